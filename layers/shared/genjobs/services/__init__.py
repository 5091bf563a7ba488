"""Domain services: the rules. They take their dependencies as arguments and never see events or HTTP."""
