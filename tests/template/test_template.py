"""template.yaml, read as data: the deployed stack matches what the code does and needs.

Nothing here talks to AWS. `make validate` (sam validate --lint, cfn-lint) checks the template's syntax and
resource schemas; these tests check that it agrees with the code: routes, environment, layer, IAM scope,
the S3 key layout, the proxy's timeouts against the pool's.
"""

from __future__ import annotations

import importlib
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from genjobs.db import Database
from genjobs.settings import DEFAULT_MAX_LIFETIME_SECONDS, DatabaseSettings, Settings
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from tests.support.template import (
    REPO_ROOT,
    Function,
    as_list,
    branches,
    functions,
    iter_policy_documents,
    load_template,
    normalize_path,
    resources,
    sub_text,
)

TEMPLATE = load_template()
FUNCTIONS = functions(TEMPLATE)
RESOURCES = resources(TEMPLATE)
GLOBAL_ENV: dict[str, Any] = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
FUNCTION_IDS = sorted(FUNCTIONS)

EXPECTED_FUNCTIONS = {
    "GenerationFunction",
    "ProgressFunction",
    "LimitsFunction",
    "ApprovalFunction",
    "MigrateFunction",
    "MaintenanceFunction",
    "WorkerFunction",
    "AdminFunction",
    "WebhooksFunction",  # webhooks (issue 16); its sender is a plain AWS::Lambda::Function outside the VPC
}

# Key layout the worker writes (media keys) and Bedrock's async-invoke output layout.
VIDEO_OUTPUT_KEYS = [
    "jobs/0b6f7a52-3c1e-4d0b-9a77-1f2e3d4c5b6a/idle/k3j4h5g6f7d8/output.mp4",
    "jobs/0b6f7a52-3c1e-4d0b-9a77-1f2e3d4c5b6a/talking/abcdef123456/output.mp4",
    # Luma's page names no output file: any MP4 under the invocation's folder is the state's video
    "jobs/0b6f7a52-3c1e-4d0b-9a77-1f2e3d4c5b6a/talking/abcdef123456/video.mp4",
]
NOT_VIDEO_OUTPUT_KEYS = [
    "jobs/0b6f7a52-3c1e-4d0b-9a77-1f2e3d4c5b6a/variations/0.png",
    "jobs/0b6f7a52-3c1e-4d0b-9a77-1f2e3d4c5b6a/idle/k3j4h5g6f7d8/manifest.json",
    "jobs/0b6f7a52-3c1e-4d0b-9a77-1f2e3d4c5b6a/idle/k3j4h5g6f7d8/generation-status.json",
    "uploads/output.mp4",
    "jobs/0b6f7a52-3c1e-4d0b-9a77-1f2e3d4c5b6a/idle/k3j4h5g6f7d8/output.mp4.json",
]


def _ref(value: Any) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


def _getatt(value: Any) -> list[str] | None:
    return value.get("Fn::GetAtt") if isinstance(value, dict) else None


# ---------------------------------------------------------------------------------------------- functions


def test_the_functions_keep_their_logical_ids() -> None:
    assert set(FUNCTIONS) == EXPECTED_FUNCTIONS


@pytest.mark.parametrize("logical_id", FUNCTION_IDS)
def test_function_handler_module_exists_and_defines_lambda_handler(logical_id: str) -> None:
    function = FUNCTIONS[logical_id]
    handler = function.setting("Handler")
    assert handler == "app.lambda_handler"
    source = function.code_dir / "app.py"
    assert source.is_file(), f"{logical_id}: {source.relative_to(REPO_ROOT)} does not exist (handler {handler})"
    module = importlib.import_module(f"functions.{function.code_dir.name}.app")
    assert callable(getattr(module, "lambda_handler", None)), f"{logical_id}: app.py has no lambda_handler"
    assert (function.code_dir / "Makefile").is_file(), f"{logical_id}: BuildMethod makefile needs a Makefile"


@pytest.mark.parametrize("logical_id", FUNCTION_IDS)
def test_every_function_uses_the_shared_layer_on_arm64_python312(logical_id: str) -> None:
    function = FUNCTIONS[logical_id]
    assert {"Ref": "SharedLayer"} in function.layers
    assert function.setting("Runtime") == "python3.12"
    assert function.setting("Architectures") == ["arm64"]
    assert RESOURCES[logical_id].get("Metadata", {}).get("BuildMethod") == "makefile"


def test_shared_layer_is_built_for_the_same_platform() -> None:
    layer = RESOURCES["SharedLayer"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}


@pytest.mark.parametrize("logical_id", FUNCTION_IDS)
def test_every_function_has_vpc_and_a_retained_log_group(logical_id: str) -> None:
    function = FUNCTIONS[logical_id]
    # No X-Ray claim: the code sends no subsegments (no Tracer), so the docs promise no traces either.
    assert function.setting("Tracing") is None
    vpc = function.setting("VpcConfig")
    assert vpc == {"SubnetIds": {"Ref": "PrivateSubnetIds"}, "SecurityGroupIds": [{"Ref": "FunctionSecurityGroup"}]}
    group_id = _ref(function.properties.get("LoggingConfig", {}).get("LogGroup"))
    assert group_id, f"{logical_id}: LoggingConfig.LogGroup must reference a log group of this template"
    group = RESOURCES[group_id]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    assert sub_text(group["LogGroupName"]) == f"/aws/lambda/${{AWS::StackName}}-{function.fixed_name_suffix}"


# ---------------------------------------------------------------------------------------------- routes


def _served_routes(module: Any) -> set[tuple[str, str]]:
    """(METHOD, path) served by the powertools resolver(s) of a handler module."""
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

    served: set[tuple[str, str]] = set()
    for value in vars(module).values():
        if not isinstance(value, ApiGatewayResolver):
            continue
        routes = [*getattr(value, "_static_routes", []), *getattr(value, "_dynamic_routes", [])]
        if routes:
            for route in routes:
                path = getattr(route, "openapi_path", None) or route.path
                served.add((str(route.method).upper(), normalize_path(path)))
        else:  # private attributes gone in some future powertools: fall back to the OpenAPI it generates
            schema = value.get_openapi_schema()
            for path, item in (schema.paths or {}).items():
                for method in ("get", "put", "post", "delete", "patch", "head", "options"):
                    if getattr(item, method, None) is not None:
                        served.add((method.upper(), normalize_path(path)))
    return served


def _template_routes(function: Function) -> set[tuple[str, str]]:
    return {(method, normalize_path(path)) for method, path in function.http_routes()}


def _format_routes(routes: set[tuple[str, str]]) -> str:
    return ", ".join(f"{m} {p}" for m, p in sorted(routes, key=lambda r: (r[1], r[0]))) or "-"


@pytest.mark.parametrize("logical_id", FUNCTION_IDS)
def test_http_routes_in_template_and_handler_agree(logical_id: str) -> None:
    """Every HttpApi event is served by the function's handler module, and every route the handler serves
    is declared on that function in the template (API Gateway would never send it otherwise)."""
    function = FUNCTIONS[logical_id]
    declared = _template_routes(function)
    source = function.code_dir / "app.py"
    if not source.is_file():
        pytest.fail(
            f"{logical_id}: {source.relative_to(REPO_ROOT)} missing; template routes: {_format_routes(declared)}"
        )
    served = _served_routes(importlib.import_module(f"functions.{function.code_dir.name}.app"))
    not_served = declared - served
    not_declared = served - declared
    assert not (not_served or not_declared), (
        f"{logical_id} ({function.code_dir.relative_to(REPO_ROOT)}/app.py):\n"
        f"  in template.yaml but not served by the handler: {_format_routes(not_served)}\n"
        f"  served by the handler but not in template.yaml: {_format_routes(not_declared)}"
    )


def test_no_route_is_declared_twice() -> None:
    seen: dict[tuple[str, str], str] = {}
    for logical_id, function in FUNCTIONS.items():
        for route in _template_routes(function):
            assert route not in seen, f"{route} is declared on {seen[route]} and {logical_id}"
            seen[route] = logical_id


def test_every_http_route_uses_the_api_and_only_health_skips_the_authorizer() -> None:
    for logical_id, function in FUNCTIONS.items():
        for name, props in function.events("HttpApi").items():
            assert props["ApiId"] == {"Ref": "HttpApi"}, f"{logical_id}.{name}"
            open_route = props.get("Auth", {}).get("Authorizer") == "NONE"
            assert open_route == (props["Path"] == "/health"), f"{logical_id}.{name}: only GET /health is public"
    auth = RESOURCES["HttpApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "JwtAuthorizer"


def test_operator_routes_and_only_they_need_the_admin_scope_at_the_gateway() -> None:
    """API Gateway refuses (403) a token without genjobs/admin on every /admin/ route, before the function
    runs; no other route asks for a scope (a merchant token has none)."""
    admin_routes = []
    for logical_id, function in FUNCTIONS.items():
        for name, props in function.events("HttpApi").items():
            auth = props.get("Auth", {})
            if props["Path"].startswith("/admin/"):
                admin_routes.append(f"{props['Method']} {props['Path']}")
                assert logical_id == "AdminFunction", f"{logical_id}.{name}: operator routes live in functions/admin"
                assert auth.get("Authorizer") == "JwtAuthorizer", f"{logical_id}.{name}"
                assert auth.get("AuthorizationScopes") == ["genjobs/admin"], f"{logical_id}.{name}"
            else:
                assert "AuthorizationScopes" not in auth, f"{logical_id}.{name}: a merchant route needs no scope"
    assert len(admin_routes) == 11, admin_routes


# ---------------------------------------------------------------------------------------------- environment


def _variables(model: type[BaseSettings]) -> dict[str, str]:
    """Environment variable -> field, for every field of a settings model (its upper-case aliases)."""
    found: dict[str, str] = {}
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        found.update({c: name for c in choices if isinstance(c, str) and c.isupper()})
    return found


SETTINGS_VARIABLES = {**_variables(Settings), **_variables(DatabaseSettings)}
# Read by powertools itself, not by genjobs.settings.
POWERTOOLS_ENV = {"POWERTOOLS_SERVICE_NAME", "LOG_LEVEL"}


def test_every_environment_variable_the_template_sets_is_a_setting_the_code_reads() -> None:
    """genjobs.settings is the one place that reads the environment: a variable the template sets that no
    settings field reads is dead configuration (or a typo)."""
    assert "DB_HOST" in SETTINGS_VARIABLES and "HOURLY_GENERATION_LIMIT" in SETTINGS_VARIABLES
    for logical_id, function in FUNCTIONS.items():
        unread = sorted(set(GLOBAL_ENV) | set(function.environment)) - SETTINGS_VARIABLES.keys() - POWERTOOLS_ENV
        assert not unread, f"{logical_id}: set in template.yaml but read by no setting: {unread}"


def test_the_template_environment_makes_valid_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What each function is configured with passes the settings' bounds and opens a database connection
    in its auth mode (intrinsic functions become placeholders; parameters their defaults; the CA bundle under
    /opt, which test_built_layer.py finds in the built layer, a stand-in file here)."""
    parameters = TEMPLATE.get("Parameters") or {}
    bundle = tmp_path / "ca.pem"
    bundle.write_text("stand-in for the layer's CA bundle\n")

    def value(raw: Any) -> str:
        ref = _ref(raw)
        if ref is not None and ref in parameters and "Default" in parameters[ref]:
            return str(parameters[ref]["Default"])
        if isinstance(raw, str) and raw.startswith("/opt/"):
            return str(bundle)
        return raw if isinstance(raw, str) else "placeholder"

    for logical_id, function in FUNCTIONS.items():
        for name in SETTINGS_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, raw in {**GLOBAL_ENV, **function.environment, "AWS_REGION": "us-east-1"}.items():
            monkeypatch.setenv(name, value(raw))
        settings = Settings.from_environment()
        settings.database.check()
        assert settings.database.auth == "iam", logical_id


def test_environment_values_match_the_stack() -> None:
    env = GLOBAL_ENV
    assert env["DB_AUTH"] == "iam"
    assert env["DB_HOST"] == {"Fn::GetAtt": ["DatabaseProxy", "Endpoint"]}
    assert env["DB_SSLMODE"] == "verify-full"
    assert env["DB_SSLROOTCERT"].startswith("/opt/"), "the CA bundle ships in the layer (/opt)"
    # request paths log in as the least-privilege role; only the migrate function as the schema owner
    assert env["DB_USER"] == "genjobs_app"
    for logical_id, function in FUNCTIONS.items():
        own = function.properties.get("Environment", {}).get("Variables", {})
        if logical_id == "MigrateFunction":
            assert own["DB_USER"] == {"Ref": "DatabaseUser"}
        else:
            assert "DB_USER" not in own, logical_id
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    # media URLs must be reachable although the bucket is private: a CDN base URL unless one is given
    assert env["MEDIA_BASE_URL"] == {
        "Fn::If": [
            "HasMediaBaseUrl",
            {"Ref": "MediaBaseUrl"},
            {"Fn::If": ["CreateMediaDistribution", {"Fn::Sub": "https://${MediaDistribution.DomainName}"}, ""]},
        ]
    }
    assert env["MEDIA_BUCKET"] == RESOURCES["MediaBucket"]["Properties"]["BucketName"]
    # Nothing invokes the progress function by name; the worker's name goes only to its two invokers.
    assert "PROGRESS_FUNCTION_NAME" not in env and "GENERATION_FUNCTION_NAME" not in env
    names = {f.fixed_name_suffix: sub_text(f.properties["FunctionName"]) for f in FUNCTIONS.values()}
    for invoker in ("GenerationFunction", "MaintenanceFunction"):
        own = FUNCTIONS[invoker].properties["Environment"]["Variables"]
        assert sub_text(own["WORKER_FUNCTION_NAME"]) == names["worker"], invoker
    # DB_MAX_LIFETIME, when set, must stay below the proxy's idle timeout too.
    if "DB_MAX_LIFETIME" in env:
        assert float(env["DB_MAX_LIFETIME"]) < RESOURCES["DatabaseProxy"]["Properties"]["IdleClientTimeout"]


# ---------------------------------------------------------------------------------------------- RDS Proxy


def test_proxy_requires_iam_auth_and_tls_and_outlives_the_pool_connections() -> None:
    proxy = RESOURCES["DatabaseProxy"]["Properties"]
    assert proxy["EngineFamily"] == "POSTGRESQL"
    assert proxy["RequireTLS"] is True
    assert proxy["Auth"], "the proxy needs at least one secret"
    for auth in proxy["Auth"]:
        assert auth["IAMAuth"] == "REQUIRED"
        assert auth["AuthScheme"] == "SECRETS"
    idle = proxy["IdleClientTimeout"]
    assert idle == 1800
    # The pool recycles connections before the proxy would drop them as idle.
    assert idle > DEFAULT_MAX_LIFETIME_SECONDS
    assert proxy["VpcSecurityGroupIds"] == [{"Ref": "ProxySecurityGroup"}]
    target = RESOURCES["DatabaseProxyTargetGroup"]["Properties"]
    assert target["DBProxyName"] == {"Ref": "DatabaseProxy"}
    assert target["TargetGroupName"] == "default"


def test_rds_db_connect_is_scoped_to_the_proxy_resource_id_and_the_app_user() -> None:
    document = RESOURCES["DatabaseConnectPolicy"]["Properties"]["PolicyDocument"]
    (statement,) = document["Statement"]
    assert statement["Action"] == "rds-db:connect"
    template, variables = statement["Resource"]["Fn::Sub"]
    assert template.endswith(":dbuser:${ProxyResourceId}/genjobs_app")
    (owner,) = RESOURCES["MigrationDatabaseConnectPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    owner_template, owner_variables = owner["Resource"]["Fn::Sub"]
    assert owner_template.endswith(":dbuser:${ProxyResourceId}/${DatabaseUser}")
    assert owner_variables == variables
    assert template.startswith("arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:")
    # arn:aws:rds:<region>:<account>:db-proxy:prx-0123 -> index 6 is the prx- id
    assert variables["ProxyResourceId"] == {
        "Fn::Select": [6, {"Fn::Split": [":", {"Fn::GetAtt": ["DatabaseProxy", "DBProxyArn"]}]}]
    }
    sample_arn = "arn:aws:rds:us-east-1:123456789012:db-proxy:prx-0123456789abcdef0"
    assert sample_arn.split(":")[6] == "prx-0123456789abcdef0"
    for logical_id, function in FUNCTIONS.items():
        policies = function.properties["Policies"]
        if logical_id == "MigrateFunction":
            assert {"Ref": "MigrationDatabaseConnectPolicy"} in policies
            assert {"Ref": "DatabaseConnectPolicy"} not in policies
        else:
            assert {"Ref": "DatabaseConnectPolicy"} in policies
            assert {"Ref": "MigrationDatabaseConnectPolicy"} not in policies


def _rules(kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in RESOURCES.values() if r["Type"] == kind]


def test_functions_reach_the_proxy_and_the_proxy_reaches_the_database_on_5432_only() -> None:
    egress = _rules("AWS::EC2::SecurityGroupEgress")
    ingress = _rules("AWS::EC2::SecurityGroupIngress")

    def has(rules: list[dict[str, Any]], group: str, peer_key: str, peer: Any) -> bool:
        return any(
            r["GroupId"] == {"Ref": group} and r[peer_key] == peer and r["FromPort"] == r["ToPort"] == 5432
            for r in rules
        )

    assert has(egress, "FunctionSecurityGroup", "DestinationSecurityGroupId", {"Ref": "ProxySecurityGroup"})
    assert has(ingress, "ProxySecurityGroup", "SourceSecurityGroupId", {"Ref": "FunctionSecurityGroup"})
    assert has(
        egress,
        "ProxySecurityGroup",
        "DestinationSecurityGroupId",
        {"Fn::If": ["CreateDatabaseCluster", {"Ref": "DatabaseSecurityGroup"}, {"Ref": "ExistingDbSecurityGroupId"}]},
    )
    assert has(ingress, "DatabaseSecurityGroup", "SourceSecurityGroupId", {"Ref": "ProxySecurityGroup"})
    assert has(ingress, "ExistingDbSecurityGroupId", "SourceSecurityGroupId", {"Ref": "ProxySecurityGroup"})
    for group in ("ProxySecurityGroup", "DatabaseSecurityGroup"):
        # an explicit egress list replaces EC2's default allow-all egress
        assert RESOURCES[group]["Properties"]["SecurityGroupEgress"]
    for rule in ingress:
        assert "CidrIp" not in rule, "database-side ingress is by security group, never by CIDR"


def test_database_is_an_existing_cluster_or_a_new_serverless_v2_cluster() -> None:
    conditions = TEMPLATE["Conditions"]
    assert conditions["CreateDatabaseCluster"] == {"Fn::Equals": [{"Ref": "ExistingDbClusterIdentifier"}, ""]}
    cluster = RESOURCES["DatabaseCluster"]
    assert cluster["Condition"] == "CreateDatabaseCluster"
    props = cluster["Properties"]
    assert props["Engine"] == "aurora-postgresql"
    assert props["StorageEncrypted"] is True
    assert "ServerlessV2ScalingConfiguration" in props
    assert "{{resolve:secretsmanager:" in sub_text(props["MasterUserPassword"])
    assert cluster["DeletionPolicy"] == "Snapshot"
    instance = RESOURCES["DatabaseInstance"]["Properties"]
    assert instance["DBInstanceClass"] == "db.serverless"
    assert instance["PubliclyAccessible"] is False
    targets = RESOURCES["DatabaseProxyTargetGroup"]["Properties"]["DBClusterIdentifiers"]
    assert targets == [
        {"Fn::If": ["CreateDatabaseCluster", {"Ref": "DatabaseCluster"}, {"Ref": "ExistingDbClusterIdentifier"}]}
    ]


# ---------------------------------------------------------------------------------------------- IAM


def _statements() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for where, document in iter_policy_documents(TEMPLATE):
        for entry in as_list(document["Statement"]):
            found.extend((where, statement) for statement in branches(entry))
    return found


def test_no_allow_statement_grants_a_wildcard_action() -> None:
    statements = _statements()
    assert len(statements) >= 8, "the policy scan found too few statements: is it broken?"
    offenders = [
        f"{where}: {action}"
        for where, statement in statements
        if statement.get("Effect") == "Allow"
        for action in as_list(statement.get("Action", []))
        if not isinstance(action, str) or "*" in action
    ]
    assert not offenders, "wildcard (or computed) actions granted: " + ", ".join(offenders)
    assert not [w for w, s in statements if "NotAction" in s or "NotResource" in s]


def test_deny_statements_only_take_away() -> None:
    """Service-wide actions appear only in Deny statements (the bucket's TLS-only rule)."""
    for where, statement in _statements():
        if any("*" in str(a) for a in as_list(statement.get("Action", []))):
            assert statement["Effect"] == "Deny", where


@pytest.mark.parametrize("logical_id", FUNCTION_IDS)
def test_functions_use_only_named_policies_of_this_template(logical_id: str) -> None:
    """No SAM policy templates (S3CrudPolicy & co. grant on whole buckets) and no AWS managed policies by
    name: a function's permissions are the template's own statements and DatabaseConnectPolicy."""
    for policy in FUNCTIONS[logical_id].properties.get("Policies", []):
        assert policy in ({"Ref": "DatabaseConnectPolicy"}, {"Ref": "MigrationDatabaseConnectPolicy"}) or set(
            policy
        ) == {"Statement"}, (logical_id, policy)


def _actions_of(function: Function) -> set[str]:
    return {a for s in function.policy_statements() if s["Effect"] == "Allow" for a in as_list(s["Action"])}


EXPECTED_ACTIONS = {
    "GenerationFunction": {"lambda:InvokeFunction"},
    # StartAsyncInvoke is authorized by bedrock:InvokeModel; bedrock:StartAsyncInvoke is no IAM action
    "WorkerFunction": {"s3:GetObject", "s3:PutObject", "bedrock:InvokeModel", "lambda:InvokeFunction"},
    "ProgressFunction": {"s3:GetObject", "secretsmanager:GetSecretValue", "lambda:InvokeFunction"},
    "LimitsFunction": set(),
    "ApprovalFunction": set(),
    "MigrateFunction": set(),
    "MaintenanceFunction": {"lambda:InvokeFunction", "bedrock:GetAsyncInvoke", "bedrock:GetFoundationModel",
                            "s3:DeleteObject"},
    "AdminFunction": {"lambda:InvokeFunction"},  # a retried job is handed to the worker
    "WebhooksFunction": {"secretsmanager:GetSecretValue", "sqs:SendMessage", "lambda:InvokeFunction"},
}


@pytest.mark.parametrize("logical_id", FUNCTION_IDS)
def test_each_function_gets_exactly_the_actions_it_needs(logical_id: str) -> None:
    assert _actions_of(FUNCTIONS[logical_id]) == EXPECTED_ACTIONS[logical_id]


MODEL_ARNS = {"Ref": "BedrockModelArns"}
ASYNC_INVOCATIONS = "arn:${AWS::Partition}:bedrock:*:${AWS::AccountId}:async-invoke/*"


def _media_objects_arn_is_the_bucket(resource: Any) -> bool:
    """`!Sub ["arn:${AWS::Partition}:s3:::${Bucket}/jobs/*", {Bucket: <the bucket's name expression>}]`."""
    if not (isinstance(resource, dict) and isinstance(resource.get("Fn::Sub"), list)):
        return False
    template, variables = resource["Fn::Sub"]
    bucket_name = RESOURCES["MediaBucket"]["Properties"]["BucketName"]
    return bool(template == "arn:${AWS::Partition}:s3:::${Bucket}/jobs/*" and variables == {"Bucket": bucket_name})
# The webhooks function's statements on resources of the stack (referenced, not spelled as ARNs).
WEBHOOK_STATEMENTS = {
    "ReadWebhookSecretKey": {"Ref": "WebhookSecretKey"},
    "EnqueueWebhookRequests": {"Fn::GetAtt": ["WebhookQueue", "Arn"]},
}


def test_resources_of_granted_actions_are_scoped() -> None:
    lambda_prefix = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
    function_arns = {lambda_prefix + sub_text(f.properties["FunctionName"]) for f in FUNCTIONS.values()}
    for function in FUNCTIONS.values():
        for statement in function.policy_statements():
            if statement["Resource"] == MODEL_ARNS:
                # the registry's models only (test_model_arns_cover_exactly_the_enabled_seeded_models)
                assert {a.split(":")[0] for a in as_list(statement["Action"])} == {"bedrock"}, statement
                continue
            if statement.get("Sid") in WEBHOOK_STATEMENTS:
                assert statement["Resource"] == WEBHOOK_STATEMENTS[statement["Sid"]], statement
                continue
            for action in as_list(statement["Action"]):
                service = action.split(":")[0]
                for raw in as_list(statement["Resource"]):
                    if service == "s3":
                        assert _media_objects_arn_is_the_bucket(raw), f"{function.logical_id} {action} on {raw}"
                        continue
                    resource = raw if isinstance(raw, dict) and set(raw) == {"Ref"} else sub_text(raw)
                    where = f"{function.logical_id} {action} on {resource}"
                    if service == "lambda":
                        assert resource in function_arns, where
                    elif service == "secretsmanager":  # the cursor key only, read by the function listing jobs
                        assert resource == {"Ref": "CursorSigningSecret"}, where
                        assert function.logical_id == "ProgressFunction", where
                    elif service == "bedrock":
                        # async invocations live in their model's region, which may not be the stack's
                        # (StartAsyncInvoke is authorized by bedrock:InvokeModel: there is no StartAsyncInvoke action)
                        assert resource == ASYNC_INVOCATIONS and action in (
                            "bedrock:InvokeModel", "bedrock:GetAsyncInvoke"), where
                    else:
                        pytest.fail(f"unexpected service in {where}")


def test_model_arns_cover_exactly_the_enabled_seeded_models(db: Database) -> None:
    """IAM follows the registry: the parameter's default names every enabled model of the migrated database, in
    its row's region, and nothing else; the invoking and lifecycle statements use that parameter."""
    # Given the migrated database's enabled models
    enabled = db.fetch_all("SELECT model_id, region FROM model_configurations WHERE enabled")
    expected = {f"arn:aws:bedrock:{r['region']}::foundation-model/{r['model_id']}" for r in enabled}
    # When the template's list is read
    default = TEMPLATE["Parameters"]["BedrockModelArns"]
    arns = {a.strip() for a in default["Default"].split(",")}
    # Then they are the same set, and the policies that invoke or inspect models use exactly it
    assert default["Type"] == "CommaDelimitedList" and len(enabled) >= 2
    assert arns == expected, {"not allowed": sorted(expected - arns), "not enabled": sorted(arns - expected)}
    model_statements = {(f.logical_id, a) for f in FUNCTIONS.values() for st in f.policy_statements()
                        if st["Resource"] == MODEL_ARNS for a in as_list(st["Action"])}
    assert model_statements == {("WorkerFunction", "bedrock:InvokeModel"),
                                ("MaintenanceFunction", "bedrock:GetFoundationModel")}


def test_the_cursor_key_is_a_generated_secret_the_progress_function_is_pointed_at() -> None:
    secret = RESOURCES["CursorSigningSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] == {"Ref": "CursorKeyLength"}
    assert TEMPLATE["Parameters"]["CursorKeyLength"]["MinValue"] >= 32  # genjobs.ports.MIN_CURSOR_KEY_BYTES
    variables = FUNCTIONS["ProgressFunction"].properties["Environment"]["Variables"]
    assert variables["CURSOR_SECRET_ID"] == {"Ref": "CursorSigningSecret"}


def test_proxy_role_reads_only_the_database_secret_and_connects_only_as_the_app_role() -> None:
    role = RESOURCES["DatabaseProxyRole"]["Properties"]
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "rds.amazonaws.com"}
    secret_policy, connect_policy = role["Policies"]
    (statement,) = secret_policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert statement["Resource"]["Fn::If"][1] == {"Ref": "DatabaseSecret"}
    # end-to-end IAM: the proxy logs in as genjobs_app on this cluster's resource id only
    (connect,) = connect_policy["PolicyDocument"]["Statement"]
    assert connect["Action"] == "rds-db:connect"
    template, variables = connect["Resource"]["Fn::Sub"]
    assert template.endswith(":dbuser:${ClusterResourceId}/genjobs_app")
    assert variables["ClusterResourceId"] == {
        "Fn::If": [
            "CreateDatabaseCluster",
            {"Fn::GetAtt": ["DatabaseCluster", "DBClusterResourceId"]},
            {"Ref": "ExistingDbClusterResourceId"},
        ]
    }
    proxy = RESOURCES["DatabaseProxy"]["Properties"]
    assert proxy["DefaultAuthScheme"] == "IAM_AUTH"
    assert RESOURCES["DatabaseCluster"]["Properties"]["EnableIAMDatabaseAuthentication"] is True


# ---------------------------------------------------------------------------------------------- S3


def _s3_event() -> dict[str, Any]:
    """The media bucket's one Lambda notification."""
    (config,) = RESOURCES["MediaBucket"]["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    return dict(config)


def _matches(rules: list[dict[str, str]], key: str) -> bool:
    for rule in rules:
        name = rule["Name"].lower()
        if name == "prefix" and not key.startswith(rule["Value"]):
            return False
        if name == "suffix" and not key.endswith(rule["Value"]):
            return False
    return True


def test_video_outputs_and_only_them_notify_the_progress_function() -> None:
    event = _s3_event()
    assert event["Function"] == {"Fn::GetAtt": ["ProgressFunction", "Arn"]}
    assert event["Event"] == "s3:ObjectCreated:*"
    rules = event["Filter"]["S3Key"]["Rules"]
    for key in VIDEO_OUTPUT_KEYS:
        assert _matches(rules, key), key
    for key in NOT_VIDEO_OUTPUT_KEYS:
        assert not _matches(rules, key), key
    # declared on the bucket, not as SAM S3 events (whose permission would lack a SourceArn)
    assert [f for f in FUNCTIONS.values() if f.events("S3")] == []


def test_the_progress_function_takes_exactly_the_keys_the_filter_lets_through() -> None:
    """The notification filter (template.yaml) and the key pattern the progress function records
    (genjobs.services.worker.videos.OUTPUT_KEY) agree: any MP4 under an invocation's folder, nothing else."""
    output_key = importlib.import_module("genjobs.services.worker.videos").OUTPUT_KEY
    for key in VIDEO_OUTPUT_KEYS:
        assert output_key.fullmatch(key), key
    for key in NOT_VIDEO_OUTPUT_KEYS:
        assert not output_key.fullmatch(key), key


def test_only_the_media_bucket_may_invoke_the_progress_function() -> None:
    permission = RESOURCES["VideoOutputInvokePermission"]["Properties"]
    assert permission["FunctionName"] == {"Fn::GetAtt": ["ProgressFunction", "Arn"]}
    assert permission["Principal"] == "s3.amazonaws.com"
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    source, names = permission["SourceArn"]["Fn::Sub"]
    assert source == "arn:${AWS::Partition}:s3:::${Bucket}"
    # the same bucket name expression as the bucket itself
    assert names["Bucket"] == RESOURCES["MediaBucket"]["Properties"]["BucketName"]
    assert "VideoOutputInvokePermission" in as_list(RESOURCES["MediaBucket"]["DependsOn"])


def test_the_worker_writes_where_the_filter_and_policies_look() -> None:
    """The policies grant jobs/* and the notification filters jobs/...output.mp4: check against the code's
    own key builders where it exposes them (genjobs.services.worker.videos.output_prefix), else the documented
    layout."""
    job_id = uuid.UUID("0b6f7a52-3c1e-4d0b-9a77-1f2e3d4c5b6a")
    rules = _s3_event()["Filter"]["S3Key"]["Rules"]
    videos = importlib.import_module("genjobs.services.worker.videos")
    output_prefix = getattr(videos, "output_prefix", None)
    prefix = output_prefix(job_id, "idle") if output_prefix else f"jobs/{job_id}/idle/"
    assert prefix.startswith("jobs/"), prefix
    # Bedrock writes <prefix><invocation id>/output.mp4 (plus manifest.json, generation-status.json)
    assert _matches(rules, f"{prefix}k3j4h5g6f7d8/output.mp4")
    assert not _matches(rules, f"{prefix}k3j4h5g6f7d8/manifest.json")
    variations = importlib.import_module("genjobs.services.worker.variations")
    for index in range(4):
        key = variations.variation_key(job_id, index)
        assert key.startswith(f"jobs/{job_id}/"), key
        assert not _matches(rules, key), f"{key} would be taken for a video output"


DISTRIBUTION_ARN = "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${MediaDistribution}"


def test_only_the_stacks_cloudfront_distribution_may_read_media() -> None:
    document = RESOURCES["MediaBucketPolicy"]["Properties"]["PolicyDocument"]
    statements = [s for entry in document["Statement"] for s in branches(entry)]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "CloudFrontReadsMedia",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": {"Fn::Sub": "${MediaBucket.Arn}/jobs/*"},
            "Condition": {"StringEquals": {"AWS:SourceArn": {"Fn::Sub": DISTRIBUTION_ARN}}},
        }
    ]
    origin = RESOURCES["MediaDistribution"]["Properties"]["DistributionConfig"]["Origins"][0]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["MediaOriginAccessControl", "Id"]}
    domain, variables = origin["DomainName"]["Fn::Sub"]
    assert domain.startswith("${Bucket}.s3.${AWS::Region}.")
    assert variables == {"Bucket": RESOURCES["MediaBucket"]["Properties"]["BucketName"]}


def test_media_bucket_is_private_encrypted_and_has_lifecycle_rules() -> None:
    bucket = RESOURCES["MediaBucket"]
    props = bucket["Properties"]
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    assert props["LifecycleConfiguration"]["Rules"]
    assert bucket["DeletionPolicy"] == "Retain"
    # the notification is on the bucket, after its invoke permission (S3 checks the destination on write)
    assert "NotificationConfiguration" in props and bucket["DependsOn"] == "VideoOutputInvokePermission"


# ---------------------------------------------------------------------------------------------- lifecycle


def test_migrations_run_on_every_layer_change_before_the_api_and_the_new_code() -> None:
    migrations = RESOURCES["SchemaMigrations"]
    props = migrations["Properties"]
    assert props["ServiceToken"] == {"Fn::GetAtt": ["MigrateFunction", "Arn"]}
    assert props["LayerVersion"] == {"Ref": "SharedLayer"}
    assert props["MigrationsRevision"] == {"Ref": "MigrationsRevision"}
    assert "DatabaseProxyTargetGroup" in as_list(migrations["DependsOn"])
    assert "SchemaMigrations" in as_list(RESOURCES["HttpApi"]["DependsOn"])
    for logical_id in EXPECTED_FUNCTIONS - {"MigrateFunction"}:
        assert "SchemaMigrations" in as_list(RESOURCES[logical_id].get("DependsOn", [])), logical_id


def test_async_invocations_retry_then_land_in_the_dlq() -> None:
    queue = {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]}
    assert "EventInvokeConfig" not in FUNCTIONS["GenerationFunction"].properties, "HTTP only: nothing async"
    worker = FUNCTIONS["WorkerFunction"].properties["EventInvokeConfig"]
    assert worker["MaximumRetryAttempts"] == {"Ref": "WorkerMaximumRetryAttempts"}
    assert worker["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": queue}
    progress = FUNCTIONS["ProgressFunction"].properties["EventInvokeConfig"]
    assert progress["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": queue}
    maintenance = FUNCTIONS["MaintenanceFunction"].properties["EventInvokeConfig"]
    assert maintenance["MaximumRetryAttempts"] == 0
    schedules = FUNCTIONS["MaintenanceFunction"].events("Schedule")
    assert schedules["EveryMinute"]["Schedule"] == "rate(1 minute)"


def test_the_daily_model_lifecycle_check_is_a_maintenance_action_with_an_alarm() -> None:
    import json

    from genjobs.models.actions import MAINTENANCE_ACTIONS, CheckModelLifecycles

    daily = FUNCTIONS["MaintenanceFunction"].events("Schedule")["ModelLifecycleDaily"]
    assert daily["Schedule"] == "rate(1 day)"
    assert isinstance(MAINTENANCE_ACTIONS.validate_python(json.loads(daily["Input"])), CheckModelLifecycles)
    alarm = RESOURCES["ModelLegacyAlarm"]["Properties"]
    assert "ModelLegacy" in sub_text(alarm["Metrics"][0]["Expression"]) and alarm["Threshold"] == 1


# ---------------------------------------------------------------------------------------------- alarms, outputs


def _alarms() -> list[dict[str, Any]]:
    return _rules("AWS::CloudWatch::Alarm")


@pytest.mark.parametrize("logical_id", FUNCTION_IDS)
def test_every_function_has_error_and_throttle_alarms(logical_id: str) -> None:
    dimension = {"Name": "FunctionName", "Value": {"Ref": logical_id}}
    metrics = {
        a["MetricName"] for a in _alarms() if a.get("Namespace") == "AWS/Lambda" and dimension in a["Dimensions"]
    }
    assert metrics == {"Errors", "Throttles"}


def test_dlq_depth_and_jobs_timed_out_alarms_exist_and_every_alarm_notifies() -> None:
    alarms = _alarms()
    assert any(
        a.get("Namespace") == "AWS/SQS" and a["MetricName"] == "ApproximateNumberOfMessagesVisible" for a in alarms
    )
    (timed_out,) = [a for a in alarms if "JobsTimedOut" in str(a.get("Metrics", ""))]
    expression = sub_text(timed_out["Metrics"][0]["Expression"])
    assert "${MetricsNamespace}" in expression
    assert TEMPLATE["Parameters"]["MetricsNamespace"]["Default"] == "genjobs"
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], alarm["AlarmName"]


def test_alarmed_metric_is_emitted_in_the_alarmed_namespace() -> None:
    """The JobsTimedOut alarm reads MetricsNamespace; code that names a namespace literally must use the
    same one (better: none, so POWERTOOLS_METRICS_NAMESPACE from the template applies)."""
    default = TEMPLATE["Parameters"]["MetricsNamespace"]["Default"]
    sources = {p: p.read_text(encoding="utf-8") for p in (REPO_ROOT / "functions").rglob("*.py")}
    assert any("JobsTimedOut" in text for text in sources.values()), "no function emits JobsTimedOut any more"
    for path, text in sources.items():
        for literal in re.findall(r"Metrics\([^)]*namespace\s*=\s*[\"']([^\"']+)[\"']", text):
            assert literal == default, f"{path.relative_to(REPO_ROOT)}: namespace {literal!r} != {default!r}"


def test_outputs() -> None:
    outputs = TEMPLATE["Outputs"]
    assert {"ApiUrl", "ProxyEndpoint", "MediaBucketName"} <= set(outputs)
    assert outputs["ProxyEndpoint"]["Value"] == {"Fn::GetAtt": ["DatabaseProxy", "Endpoint"]}
    assert outputs["MediaBucketName"]["Value"] == {"Ref": "MediaBucket"}


# ---------------------------------------------------------------------------------------------- webhooks


def test_the_webhook_sender_runs_outside_the_vpc_fed_by_a_queue_with_a_dlq() -> None:
    sender = RESOURCES["WebhookSenderFunction"]
    assert sender["Type"] == "AWS::Lambda::Function" and "VpcConfig" not in sender["Properties"]
    queue = RESOURCES["WebhookQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]}
    # Lambda asks for a visibility timeout of at least six times the function's timeout
    assert queue["VisibilityTimeout"] >= 6 * sender["Properties"]["Timeout"]
    mapping = RESOURCES["WebhookSenderQueueMapping"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["WebhookQueue", "Arn"]}


def test_the_webhook_sender_role_can_only_read_its_queue_report_and_log() -> None:
    statements = RESOURCES["WebhookSenderRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    granted = {(a, str(s["Resource"])) for s in statements for a in as_list(s["Action"])}
    queue = str({"Fn::GetAtt": ["WebhookQueue", "Arn"]})
    webhooks_arn = str({"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
                                   "${AWS::StackName}-webhooks"})
    assert granted == {
        ("logs:CreateLogStream", str({"Fn::GetAtt": ["WebhookSenderLogGroup", "Arn"]})),
        ("logs:PutLogEvents", str({"Fn::GetAtt": ["WebhookSenderLogGroup", "Arn"]})),
        ("sqs:ReceiveMessage", queue), ("sqs:DeleteMessage", queue), ("sqs:GetQueueAttributes", queue),
        ("lambda:InvokeFunction", webhooks_arn),
    }


def test_webhook_failures_are_alarmed() -> None:
    alarms = {a["AlarmName"]["Fn::Sub"].split("}-", 1)[1]: a for a in _alarms()}
    assert {"webhook-sender-errors", "webhook-dlq", "webhook-failure-rate"} <= set(alarms)
    rate = alarms["webhook-failure-rate"]
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m}
    assert names == {"WebhookAttempts", "WebhookAttemptsFailed"}
    source = (REPO_ROOT / "functions" / "webhooks" / "app.py").read_text()
    assert all(f'"{name}"' in source for name in names), "the webhooks function must emit what the alarm reads"
