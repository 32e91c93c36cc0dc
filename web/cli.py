"""The ``bangban`` command: the engine's commands plus ``serve``."""
from __future__ import annotations

import click

from engine.cli import cli


@cli.command("serve", help="启动网页服务（waitress）。")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
def serve(host: str, port: int, threads: int) -> None:
    from waitress import serve as waitress_serve

    from . import create_app
    app = create_app()
    click.echo(f"bangban 已启动：请在浏览器打开 http://{host}:{port}/ （Ctrl+C 停止）", err=True)
    waitress_serve(app, host=host, port=port, threads=threads, ident="bangban", clear_untrusted_proxy_headers=True)


def main() -> None:
    cli()
