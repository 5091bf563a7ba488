"""template.yaml, read as data: what issue 13 ("a deploy that works on the first try") requires of it.

Worker split and concurrency (point 5), the media bucket's name (point 6), TLS settings (points 7 and 9), the
network routes (point 3). The SAM-transformed template gets its own checks in `make check-deploy`
(scripts/check_transformed.py, tests/deploy/test_check_deploy.py).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.template import as_list, functions, load_template, resources, sub_text

TEMPLATE = load_template()
FUNCTIONS = functions(TEMPLATE)
RESOURCES = resources(TEMPLATE)
PARAMETERS = TEMPLATE["Parameters"]
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")  # S3 general purpose bucket naming rules
API_FUNCTIONS = {f for f, fn in FUNCTIONS.items() if fn.events("HttpApi")}

# ---------------------------------------------------------------------------------------------- evaluator


def evaluate(value: Any, params: dict[str, str], conditions: dict[str, bool]) -> Any:
    """Resolve the intrinsics the template uses for names (Ref, Fn::If/Sub/Select/Split/Join) like CloudFormation."""
    if isinstance(value, list):
        return [evaluate(v, params, conditions) for v in value]
    if not isinstance(value, dict) or len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref")):
        if isinstance(value, dict):
            return {k: evaluate(v, params, conditions) for k, v in value.items()}
        return value
    ((key, arg),) = value.items()
    if key == "Ref":
        return params[arg]
    if key == "Fn::If":
        name, when_true, when_false = arg
        return evaluate(when_true if conditions[name] else when_false, params, conditions)
    if key == "Fn::Select":
        index, items = arg
        return evaluate(items, params, conditions)[int(index)]
    if key == "Fn::Split":
        separator, text = arg
        return str(evaluate(text, params, conditions)).split(separator)
    if key == "Fn::Join":
        separator, items = arg
        return separator.join(str(i) for i in evaluate(items, params, conditions))
    if key == "Fn::Sub":
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        local = {**params, **{k: str(evaluate(v, params, conditions)) for k, v in variables.items()}}
        return re.sub(r"\$\{([^}]+)\}", lambda m: local[m.group(1)], text)
    raise AssertionError(f"unsupported intrinsic {key}")


def _pseudo(stack: str, stack_uuid: str, bucket_param: str = "") -> tuple[dict[str, str], dict[str, bool]]:
    params = {
        "AWS::StackName": stack,
        "AWS::AccountId": "123456789012",
        "AWS::Region": "us-east-1",
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackId": f"arn:aws:cloudformation:us-east-1:123456789012:stack/{stack}/{stack_uuid}",
        "MediaBucketName": bucket_param,
    }
    return params, {"HasMediaBucketName": bucket_param != ""}


BUCKET_EXPRESSION = RESOURCES["MediaBucket"]["Properties"]["BucketName"]

# ---------------------------------------------------------------------------------------------- point 6: bucket


def test_a_recreated_stack_gets_a_new_bucket_name() -> None:
    # Given a stack deleted (its bucket retained) and created again with the same name
    first = evaluate(BUCKET_EXPRESSION, *_pseudo("genjobs-dev", "51af3dc0-da77-11e4-872e-1234567db123"))
    second = evaluate(BUCKET_EXPRESSION, *_pseudo("genjobs-dev", "9c2e11a0-0f1b-11f0-9d3e-0a1b2c3d4e5f"))
    # Then the new stack's bucket does not collide with the retained one
    assert first == "genjobs-dev-media-123456789012-51af3dc0"
    assert second == "genjobs-dev-media-123456789012-9c2e11a0"
    assert RESOURCES["MediaBucket"]["DeletionPolicy"] == "Retain"


def test_the_generated_name_is_a_valid_bucket_name_for_stack_names_up_to_35_characters() -> None:
    name = evaluate(BUCKET_EXPRESSION, *_pseudo("a" * 35, "ffffffff-da77-11e4-872e-1234567db123"))
    assert len(name) == 63 and BUCKET_NAME.match(name)
    too_long = evaluate(BUCKET_EXPRESSION, *_pseudo("a" * 36, "ffffffff-da77-11e4-872e-1234567db123"))
    assert len(too_long) > 63, "the documented limit (35) must be the real one"


def test_media_bucket_name_parameter_adopts_an_existing_name() -> None:
    params, conditions = _pseudo("genjobs-dev", "51af3dc0-da77-11e4-872e-1234567db123", "genjobs-dev-media-old")
    assert evaluate(BUCKET_EXPRESSION, params, conditions) == "genjobs-dev-media-old"
    pattern = PARAMETERS["MediaBucketName"]["AllowedPattern"]
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, "genjobs-dev-media-old")
    assert not re.fullmatch(pattern, "Not_A_Bucket")


def _bucket_uses() -> dict[str, Any]:
    """Every place that names the bucket by string (no Ref: that would be circular through the notification)."""
    worker = next(s for s in FUNCTIONS["WorkerFunction"].policy_statements() if s["Sid"] == "MediaObjects")
    progress = next(s for s in FUNCTIONS["ProgressFunction"].policy_statements() if s["Sid"] == "ReadMediaObjects")
    endpoint = next(
        s for s in RESOURCES["S3GatewayEndpoint"]["Properties"]["PolicyDocument"]["Statement"]
        if s["Sid"] == "MediaObjects"
    )
    origin = RESOURCES["MediaDistribution"]["Properties"]["DistributionConfig"]["Origins"][0]["DomainName"]
    return {
        "env": TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["MEDIA_BUCKET"],
        "worker": worker["Resource"],
        "progress": progress["Resource"],
        "endpoint": endpoint["Resource"],
        "origin": origin,
    }


@pytest.mark.parametrize("bucket_param", ["", "adopted-media-bucket"])
def test_every_reference_names_the_same_bucket(bucket_param: str) -> None:
    params, conditions = _pseudo("genjobs-dev", "51af3dc0-da77-11e4-872e-1234567db123", bucket_param)
    name = evaluate(BUCKET_EXPRESSION, params, conditions)
    uses = {where: evaluate(value, params, conditions) for where, value in _bucket_uses().items()}
    assert uses == {
        "env": name,
        "worker": f"arn:aws:s3:::{name}/jobs/*",
        "progress": f"arn:aws:s3:::{name}/jobs/*",
        "endpoint": f"arn:aws:s3:::{name}/jobs/*",
        "origin": f"{name}.s3.us-east-1.amazonaws.com",
    }


# ---------------------------------------------------------------------------------------------- point 5: worker


def test_the_worker_is_its_own_function_on_the_shared_layer() -> None:
    worker = FUNCTIONS["WorkerFunction"]
    assert worker.properties["CodeUri"] == "functions/worker"
    assert RESOURCES["WorkerFunction"]["Metadata"] == {"BuildMethod": "makefile"}
    assert {"Ref": "SharedLayer"} in worker.layers
    assert worker.properties["Timeout"] == 900
    assert not worker.events("HttpApi"), "the worker serves no HTTP route"


def test_the_worker_has_reserved_concurrency_from_its_parameter() -> None:
    assert FUNCTIONS["WorkerFunction"].properties["ReservedConcurrentExecutions"] == {
        "Ref": "WorkerReservedConcurrency"
    }
    parameter = PARAMETERS["WorkerReservedConcurrency"]
    assert parameter["Type"] == "Number"
    assert parameter["MinValue"] >= 1, "0 would throttle every job"
    assert 1 <= parameter["Default"] <= 100


def test_api_functions_do_not_share_the_workers_concurrency_or_its_timeout() -> None:
    assert {"GenerationFunction", "ProgressFunction", "LimitsFunction", "ApprovalFunction"} <= API_FUNCTIONS
    assert "WorkerFunction" not in API_FUNCTIONS
    for logical_id in API_FUNCTIONS:
        function = FUNCTIONS[logical_id]
        # no reserved pool of its own to share, and none carved from it by the worker: the worker's is separate
        assert "ReservedConcurrentExecutions" not in function.properties, logical_id
        # API Gateway stops waiting after 30 s: an HTTP function never needs the worker's 900 s
        assert function.setting("Timeout") <= 30, logical_id
        # only those also invoked asynchronously: progress (S3 video events), webhooks (deliver_webhooks requests)
        assert "EventInvokeConfig" not in function.properties or logical_id in {"ProgressFunction",
                                                                                 "WebhooksFunction"}, logical_id


def test_only_the_generation_and_maintenance_functions_invoke_the_worker() -> None:
    worker_arn = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-worker"
    invokers = {
        logical_id
        for logical_id, function in FUNCTIONS.items()
        for statement in function.policy_statements()
        if "lambda:InvokeFunction" in as_list(statement["Action"])
        and [sub_text(r) for r in as_list(statement["Resource"])] == [worker_arn]
    }
    # and the admin function: a retried job is handed to the worker
    assert invokers == {"GenerationFunction", "MaintenanceFunction", "AdminFunction"}


# ---------------------------------------------------------------------------------------------- points 3, 9


def test_vpc_endpoints_cover_every_route_the_functions_need() -> None:
    endpoints = {k: r for k, r in RESOURCES.items() if r["Type"] == "AWS::EC2::VPCEndpoint"}
    services = {sub_text(r["Properties"]["ServiceName"]).rsplit(".", 1)[-1]: r for r in endpoints.values()}
    # secretsmanager: progress reads the cursor key, webhooks the secret key; sqs: webhooks enqueues requests
    assert set(services) == {"s3", "bedrock-runtime", "lambda", "secretsmanager", "sqs"}
    for resource in endpoints.values():
        assert resource["Condition"] == "IsCreateVpcEndpoints"
    assert services["s3"]["Properties"]["VpcEndpointType"] == "Gateway"
    assert services["s3"]["Properties"]["RouteTableIds"] == {"Ref": "PrivateRouteTableIds"}
    for name in ("bedrock-runtime", "lambda", "secretsmanager", "sqs"):
        props = services[name]["Properties"]
        assert props["VpcEndpointType"] == "Interface" and props["PrivateDnsEnabled"] is True
        assert props["SubnetIds"] == {"Ref": "PrivateSubnetIds"}
        assert props["SecurityGroupIds"] == [{"Ref": "VpcEndpointSecurityGroup"}]
    (ingress,) = RESOURCES["VpcEndpointSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert ingress["SourceSecurityGroupId"] == {"Ref": "FunctionSecurityGroup"}
    assert ingress["FromPort"] == ingress["ToPort"] == 443


def test_the_s3_endpoint_lets_custom_resources_answer_cloudformation() -> None:
    statements = RESOURCES["S3GatewayEndpoint"]["Properties"]["PolicyDocument"]["Statement"]
    answer = next(s for s in statements if s["Sid"] == "CloudFormationCustomResourceResponses")
    assert answer["Effect"] == "Allow" and answer["Action"] == "s3:PutObject"
    resource = sub_text(answer["Resource"])
    # CloudFormation's response buckets: cloudformation-custom-resource-response-<region>
    assert resource == "arn:${AWS::Partition}:s3:::cloudformation-custom-resource-response-*/*"


@pytest.mark.parametrize("with_domain", [True, False])
def test_cloudfront_enforces_tls_12_with_its_own_certificate(with_domain: bool) -> None:
    config = RESOURCES["MediaDistribution"]["Properties"]["DistributionConfig"]
    acm = {"MediaCertificateArn": "arn:aws:acm:us-east-1:111122223333:certificate/x"}
    certificate = evaluate(config["ViewerCertificate"], acm, {"HasMediaDomainName": with_domain})
    if with_domain:
        assert certificate["MinimumProtocolVersion"] == "TLSv1.2_2021"
        assert certificate["SslSupportMethod"] == "sni-only"
    else:
        # the default certificate: CloudFront applies TLSv1 whatever is set (documented limit, docs/deploy.md)
        assert certificate == {"CloudFrontDefaultCertificate": True}
    rule = TEMPLATE["Rules"]["MediaDomainNeedsCertificate"]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "MediaCertificateArn"}, ""]}]}
