"""The ``bangban`` command: the engine's commands plus ``serve``."""
from __future__ import annotations

import click

from engine.cli import cli


@cli.command("serve", help="启动网页服务（waitress），默认同时在本进程内运行定时器工作线程。")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--worker/--no-worker", default=True, show_default=True,
              help="在本进程内运行定时器工作线程（多进程部署时用 --no-worker，另起 bangban worker）")
@click.option("--demo-clock", is_flag=True, help="演示模式：督办页可把服务时钟拨快，以演示黄牌、红牌与督办")
@click.option("--connection-limit", default=100, show_default=True, type=click.IntRange(1, 100_000),
              help="同时保持的连接数上限（waitress connection_limit）；超出的排队；慢速客户端应由前置反向代理缓冲")
@click.option("--channel-timeout", default=30, show_default=True, type=click.IntRange(1, 3600),
              help="一个连接多少秒无收发即断开（waitress channel_timeout），以免慢速或挂起的连接占满连接数")
def serve(host: str, port: int, threads: int, worker: bool, demo_clock: bool, connection_limit: int,
          channel_timeout: int) -> None:
    import logging

    from waitress import serve as waitress_serve

    from engine.cli import require_current_schema
    from engine.worker import start_thread

    from . import create_app
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    require_current_schema()      # the service never migrates: that is init-db's, as the owner role
    app = create_app({"DEMO_CLOCK": demo_clock})
    if worker:
        start_thread(app.extensions["bangban"])
    click.echo(f"bangban 已启动：请在浏览器打开 http://{host}:{port}/ （Ctrl+C 停止）"
               + ("；定时器工作线程已启动" if worker else ""), err=True)
    waitress_serve(app, host=host, port=port, threads=threads, ident="bangban", clear_untrusted_proxy_headers=True,
                   connection_limit=connection_limit, channel_timeout=channel_timeout)


def main() -> None:
    from engine import cli_zh
    cli_zh.localize(cli)       # serve is added here, after engine.cli localized its own commands' placeholders
    cli()
