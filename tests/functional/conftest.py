"""Fixtures of the functional tests: the handlers called with API Gateway events, as a merchant, with the
worker dispatch stubbed at the Lambda client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from genjobs import dependencies
from genjobs.adapters.lambda_invoker import LambdaInvoker
from genjobs.db import Database

from local_runner.media import LocalMediaStore
from tests.support.fakes import LambdaStub
from tests.support.handlers import HANDLERS
from tests.support.merchants import MerchantClient


@pytest.fixture
def lambda_stub(db: Database) -> Iterator[LambdaStub]:
    stub = LambdaStub()
    stub.stubber.activate()
    dependencies.override(invoker=LambdaInvoker(stub.client))
    yield stub
    stub.stubber.deactivate()
    dependencies.reset()


@pytest.fixture
def acme(db: Database, lambda_stub: LambdaStub) -> MerchantClient:
    return MerchantClient(HANDLERS, "acme")


@pytest.fixture
def globex(db: Database, lambda_stub: LambdaStub) -> MerchantClient:
    return MerchantClient(HANDLERS, "globex")


@pytest.fixture
def handler_store(store: LocalMediaStore, db: Database) -> Iterator[LocalMediaStore]:
    """`store`, also the one the handlers use (through genjobs.dependencies)."""
    dependencies.override(store=store)
    yield store
    dependencies.reset()


@pytest.fixture
def operator(db: Database, lambda_stub: LambdaStub) -> MerchantClient:
    """An operator: a token of its own merchant with the genjobs/admin scope (as Cognito issues it)."""
    return MerchantClient(HANDLERS, "ops", claims={"sub": "operator-ann", "scope": "openid genjobs/admin"})


@pytest.fixture
def webhook_parts(db: Database, lambda_stub: LambdaStub) -> Iterator[None]:
    """The webhooks function's secret box (a test key) and an HTTP sender allowed to reach 127.0.0.1."""
    from genjobs.adapters.webhooks import FernetSecretBox, HttpSender

    from tests.support.webhooks import KEY

    dependencies.override(secret_box=FernetSecretBox(KEY), webhook_sender=HttpSender(allow_private=True,
                                                                                      timeout_seconds=5))
    yield
    dependencies.override(secret_box=None, webhook_sender=None)


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A real HTTP receiver on 127.0.0.1 recording every delivery."""
    from tests.support.webhooks import running_receiver

    with running_receiver() as running:
        yield running
