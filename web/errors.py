"""Every error a user can cause becomes a Chinese message and a 4xx: JSON under /api, a page elsewhere."""
from __future__ import annotations

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from engine.errors import BangbanError

HTTP_MESSAGES = {
    400: "请求有误",
    401: "请先登录",
    403: "您无权访问此页面",
    404: "页面不存在",
    405: "不支持的请求方式",
    413: "提交的内容过大",
    415: "不支持的内容类型",
}


def _respond(status: int, code: str, message: str, details=None, headers: dict | None = None):
    if request.path.startswith("/api/"):
        body = {"error": code, "message": message}
        if details:
            body["details"] = details
        return jsonify(body), status, headers or {}
    return render_template("error.html", status=status, message=message, details=details), status, headers or {}


def init_app(app) -> None:
    @app.errorhandler(BangbanError)
    def domain_error(exc: BangbanError):
        retry = getattr(exc, "retry_after", None)
        if retry and exc.status == 503:
            app.logger.warning("database unavailable: %s", str(exc.__cause__ or exc).splitlines()[0][:200])
        elif exc.status >= 500:
            app.logger.error("process definition error: %s %s", exc.message, exc.details)
        return _respond(exc.status, exc.code, exc.message, exc.details,
                        {"Retry-After": str(retry)} if retry else None)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        message = HTTP_MESSAGES.get(status, "请求无法处理")
        if status == 413 and request.max_content_length:
            message = f"提交的内容超过 {request.max_content_length // 1024} KB 上限"
        if status == 405 and getattr(exc, "valid_methods", None):
            return _respond(status, "http_error", message, headers={"Allow": ", ".join(sorted(exc.valid_methods))})
        if exc.description and any("\u4e00" <= ch <= "\u9fff" for ch in exc.description):
            message = exc.description
        return _respond(status, "http_error", message)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("unexpected error")
        return _respond(500, "internal_error", "系统内部错误，请稍后重试或联系管理员")
