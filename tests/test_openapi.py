"""The OpenAPI description served at /api/openapi.json: every route under /api is in it, with every error it can
give, and the document is valid OpenAPI 3.1 whose references all resolve; the forms are the current version's."""
from __future__ import annotations

import json
import re

import pytest

from web import create_app
from web.openapi import form_schema_name

METHODS = {"get", "put", "post", "delete", "patch"}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
TERMINATION_REASONS = {"项目不符合现行法律法规规章和政策规定", "国家法律法规规章和政策发生调整",
                       "出现不可抗力导致项目不具备办理条件", "申请单位申请终止帮办代办服务",
                       "申请单位不配合或弄虚作假导致项目办理无法推进"}


@pytest.fixture
def app(svc):
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


@pytest.fixture
def doc(app) -> dict:
    r = app.test_client().get("/api/openapi.json")      # no login needed
    assert r.status_code == 200 and r.mimetype == "application/json"
    return r.json


def flask_routes(app) -> set[tuple[str, str]]:
    """``(path, method)`` of every route under /api, in OpenAPI's notation (``<int:doc_id>`` -> ``{doc_id}``)."""
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        out |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return out


def documented(doc: dict) -> set[tuple[str, str]]:
    return {(path, m) for path, item in doc["paths"].items() for m in item if m in METHODS}


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def resolve(doc: dict, ref: str):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"$ref 无法解析：{ref}"
        node = node[part]
    return node


def deref(doc: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(doc, node["$ref"])
    return node


def refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for v in node.values():
            yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def test_every_api_route_is_described_and_nothing_else(app, doc):
    routes, described = flask_routes(app), documented(doc)
    assert len(routes) >= 30
    missing = sorted(routes - described)
    assert not missing, f"这些路由没有写进 OpenAPI 说明：{missing}"
    extra = sorted(described - routes)
    assert not extra, f"OpenAPI 说明中有不存在的路由：{extra}"


def test_the_served_document_is_valid_openapi_31(doc):
    assert doc["openapi"].startswith("3.1")
    for ref in set(refs(doc)):
        resolve(doc, ref)
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(doc)


def test_the_static_base_is_valid_on_its_own(app):
    r = app.test_client().get("/static/openapi.json")
    assert r.status_code == 200
    base = json.loads(r.data)
    for ref in set(refs(base)):
        resolve(base, ref)
    r.close()


def test_every_operation_documents_its_parameters_bodies_and_errors(doc):
    for path, method, op in operations(doc):
        where = f"{method.upper()} {path}"
        assert op.get("summary") and op.get("operationId") and op.get("tags"), where
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"{([^}]+)}", path)), where
        statuses = set(op["responses"])
        assert any(s.startswith("2") for s in statuses), where
        assert "503" in statuses, f"{where} 缺少 503（数据库暂时不可用）"
        secured = op.get("security", doc["security"]) != []
        if secured:
            assert "401" in statuses, f"{where} 缺少 401（未登录）"
        if "{" in path:
            assert "404" in statuses, f"{where} 缺少 404（地址参数不对时）"
        if "requestBody" in op:
            assert {"413", "415", "422"} <= statuses, f"{where} 的请求体错误（413/415/422）不全"
        for status, response in op["responses"].items():
            response = deref(doc, response)
            assert response.get("description"), (where, status)
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == ERROR_REF, (where, status)
            else:
                assert "schema" in response["content"]["application/json"], (where, status)
    unavailable = doc["components"]["responses"]["Unavailable"]
    assert unavailable["headers"]["Retry-After"]["required"] is True
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message"] and "details" in error["properties"]
    assert re.search(error["properties"]["message"]["pattern"], "请先登录")


def test_limits_are_documented(doc):
    text = json.dumps(doc, ensure_ascii=False)
    assert "256 KB" in text and "4 MB" in text
    too_large = doc["components"]["responses"]["TooLarge"]["description"]
    assert "256 KB" in too_large and "4 MB" in too_large
    login = doc["paths"]["/api/login"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert login["properties"]["username"]["maxLength"] == 64 and login["additionalProperties"] is False


def test_the_forms_of_the_current_version_are_in_the_description(svc, doc):
    schemas = doc["components"]["schemas"]
    forms = svc.current.forms
    assert forms
    for name, form in forms.items():
        served = schemas[form_schema_name(name)]
        assert set(served["properties"]) == set(form["properties"]), name
        assert served.get("required") == form.get("required") and served.get("$schema") == form.get("$schema"), name
    # the termination messages: their request bodies refer to the forms with the five reasons
    body = doc["paths"]["/api/cases/{case_no}/messages/{key}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    choices = [resolve(doc, r["$ref"]) for r in deref(doc, body)["anyOf"]]
    assert len(choices) == 3     # and the withdrawal (撤回申请), whose reason is free text
    assert [f["title"] for f in choices if "enum" not in f["properties"]["reason"]] == ["撤回申请"]
    reasons = {form["title"]: set(form["properties"]["reason"]["enum"]) for form in choices
               if "enum" in form["properties"]["reason"]}
    assert reasons == {"决定终止帮办代办服务": TERMINATION_REASONS,      # 不配合或弄虚作假: the agent's reason only
                       "申请终止帮办代办服务": TERMINATION_REASONS - {"申请单位不配合或弄虚作假导致项目办理无法推进"}}
    keys = doc["paths"]["/api/cases/{case_no}/messages/{key}"]["post"]["parameters"][1]["schema"]["enum"]
    assert set(keys) == {"termination_request", "termination", "withdrawal"}
    task_body = doc["paths"]["/api/tasks/{task_id}/messages/{key}"]["post"]["requestBody"]["content"]["application/json"]
    assert "#/components/schemas/form_extension_request" in set(refs(deref(doc, task_body["schema"])))
    # starting a case: data is the application form, its service items the catalogue's
    start = doc["paths"]["/api/cases"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    application = deref(doc, start["properties"]["data"])
    assert application == schemas["form_application"]
    assert set(application["properties"]["service_items"]["items"]["enum"]) == set(svc.current.catalogue.items)
    # completing a task: any task form (here: review, handle_item, deliver ...), not the application
    task_forms = set(refs(deref(doc, doc["paths"]["/api/tasks/{task_id}/complete"]["post"]["requestBody"]["content"]
                              ["application/json"]["schema"])))
    assert {"#/components/schemas/form_review", "#/components/schemas/form_handle_item",
            "#/components/schemas/form_deliver"} <= task_forms
    assert "#/components/schemas/form_application" not in task_forms
    assert doc["info"]["x-process-version"] == svc.current.hash[:12]


def test_the_completion_slip_is_described_as_printed_in_two_copies(doc):
    op = doc["paths"]["/api/cases/{case_no}/documents/{doc_id}"]["get"]
    assert "办结单" in op["description"] and "两联" in op["description"]
    assert "第一联" in op["description"] and "第二联" in op["description"]
