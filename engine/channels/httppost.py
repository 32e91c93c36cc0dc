"""A JSON POST over the standard library's urllib, with a timeout; any failure becomes a Chinese :class:`ChannelError`."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from . import ChannelError


def check_url(url: str | None, what: str) -> str:
    if not url:
        raise ChannelError(f"{what}未配置地址，请系统管理员配置")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChannelError(f"{what}的地址无效，请系统管理员检查配置")
    return url


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float, what: str) -> dict | None:
    """POST ``body`` (JSON) to ``url``; returns the answer's JSON object (None if it is not one). A non-2xx answer,
    a refused or timed-out connection raise :class:`ChannelError`."""
    request = urllib.request.Request(check_url(url, what), data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http/https only, checked)
            raw = response.read(65536)
    except urllib.error.HTTPError as exc:
        raise ChannelError(f"{what}答复错误（HTTP {exc.code}）") from exc
    except TimeoutError as exc:
        raise ChannelError(f"{what}在 {timeout:g} 秒内没有答复") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ChannelError(f"无法连接{what}") from exc
    try:
        answer = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None
