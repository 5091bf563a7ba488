"""Bedrock's control plane as the model catalog: GetFoundationModel per model, in the model's region.

GetFoundationModel answers `modelDetails.modelLifecycle` = {status: ACTIVE | LEGACY, legacyTime?,
endOfLifeTime?, ...}
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_FoundationModelLifecycle.html, read
2026-12-01). A model Bedrock no longer knows (ResourceNotFoundException) is GONE: past its end of life.
IAM: bedrock:GetFoundationModel on the model's foundation-model ARN.
"""

from __future__ import annotations

import threading
from typing import Any

from genjobs.adapters import aws_client
from genjobs.adapters.bedrock import classify_client_error
from genjobs.ports import FoundationModelState, ProviderUnavailable


class BedrockModelCatalog:
    def __init__(self, client: Any = None) -> None:
        self._given = client
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client_for(self, region: str) -> Any:
        if self._given is not None:
            return self._given
        with self._lock:
            if region not in self._clients:
                self._clients[region] = aws_client("bedrock", region_name=region)
            return self._clients[region]

    def model_state(self, model_id: str, region: str) -> FoundationModelState:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client_for(region).get_foundation_model(modelIdentifier=model_id)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ResourceNotFoundException":
                return FoundationModelState(status="GONE")
            raise classify_client_error(str(error.get("Code", "")), str(error.get("Message", ""))) from exc
        except BotoCoreError as exc:
            raise ProviderUnavailable(str(exc)) from exc
        lifecycle = (answer.get("modelDetails") or {}).get("modelLifecycle") or {}
        return FoundationModelState(status="LEGACY" if lifecycle.get("status") == "LEGACY" else "ACTIVE",
                                    end_of_life=lifecycle.get("endOfLifeTime"),
                                    legacy_since=lifecycle.get("legacyTime"))
