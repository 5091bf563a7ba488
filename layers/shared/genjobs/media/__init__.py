"""Media providers: Bedrock for AWS, a deterministic local one for development."""
