"""``bangban user|department|station``: staff accounts, departments and service stations from the command line (the
first 系统管理员 of a new installation is made here). Changes are logged with the actor 命令行."""
from __future__ import annotations

import sys
from contextlib import contextmanager

import click

from .errors import BangbanError


@contextmanager
def _service(open_service):
    service = open_service()
    try:
        yield service
    except BangbanError as exc:
        click.echo(exc.message, err=True)
        for line in exc.details if isinstance(exc.details, list) else []:
            click.echo(f"  {line}", err=True)
        sys.exit(1)
    finally:
        service.db.dispose()


def register(cli: click.Group, open_service) -> None:
    @cli.group(help="员工账号（系统管理员）：新建、导入、列出、停用、重置密码")
    def user() -> None:
        pass

    @user.command("add", help="新建员工账号。不给 --password 时生成一次性密码并打印（只显示这一次，首次登录须修改）。")
    @click.option("--login", required=True, help="登录名：英文字母开头，3–32 位")
    @click.option("--name", required=True, help="姓名")
    @click.option("--role", "roles", required=True, multiple=True, help="角色代码或中文名，可多次给出，如 --role admin")
    @click.option("--department", default=None, help="部门代码或名称（部门业务专办员必填）")
    @click.option("--station", default=None, help="服务站代码或名称（服务站工作人员必填）")
    @click.option("--phone", default=None)
    @click.option("--email", default=None)
    @click.option("--password", default=None, help="指定密码（须符合密码规则）；不给则生成一次性密码")
    def user_add(login, name, roles, department, station, phone, email, password) -> None:
        with _service(open_service) as service:
            result = service.create_staff(None, {"username": login, "display_name": name, "roles": list(roles),
                                                 "department": department, "station": station, "phone": phone,
                                                 "email": email}, password=password)
        click.echo(f"已新建账号 {result['username']}（{result['display_name']}）")
        if result["password"]:
            click.echo(f"一次性密码：{result['password']}")
            click.echo("请把它当面或通过安全渠道交给本人；只显示这一次，首次登录时须修改。")

    @user.command("import", help="从 CSV 或 XLSX 文件导入员工（表头：登录名、姓名、角色、部门、服务站、手机、邮箱）。"
                                 "文件有任何问题时逐行列出并不导入任何账号；导入成功后打印每个账号的一次性密码。")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    @click.option("--dry-run", is_flag=True, help="只检查，不导入")
    def user_import(path: str, dry_run: bool) -> None:
        from pathlib import Path

        from .staff_import import MAX_BYTES
        file = Path(path)
        if file.stat().st_size > MAX_BYTES:
            click.echo(f"文件超过 {MAX_BYTES // (1024 * 1024)} MB 上限，请分成几个文件导入", err=True)
            sys.exit(1)
        with _service(open_service) as service:
            result = service.import_staff(None, file.read_bytes(), file.name, dry_run=dry_run)
        if dry_run:
            click.echo(f"{result['described']}：检查通过，共 {result['count']} 个账号可以导入（未做更改）")
            return
        click.echo(f"{result['described']}：已导入 {result['count']} 个账号。一次性密码（只显示这一次，首次登录须修改）：")
        for a in result["accounts"]:
            click.echo(f"{a['username']}\t{a['display_name']}\t{a['password']}")

    @user.command("list", help="列出员工账号。")
    @click.option("--search", "q", default=None, help="按登录名、姓名或手机号查找")
    @click.option("--all", "show_all", is_flag=True, help="包括已停用的账号")
    def user_list(q: str | None, show_all: bool) -> None:
        with _service(open_service) as service:
            page, shown = 1, 0
            while True:
                result = service.list_staff(None, q=q, active=None if show_all else True, page=page)
                for u in result["users"]:
                    where = u["department_name"] or u["station_name"] or ""
                    click.echo(f"{u['username']:<20} {u['display_name']:<12} {'、'.join(u['role_names']):<20} {where}"
                               f"{'' if u['active'] else '（已停用）'}")
                shown += len(result["users"])
                if page >= result["pages"]:
                    break
                page += 1
        click.echo(f"共 {shown} 个账号")

    @user.command("deactivate", help="停用账号：立即结束该账号的全部登录会话。")
    @click.argument("login")
    @click.option("--reason", default=None, help="原因，记入管理日志")
    def user_deactivate(login: str, reason: str | None) -> None:
        with _service(open_service) as service:
            result = service.set_staff_active(None, login, False, reason)
        click.echo(f"已停用 {result['username']}，结束了 {result['sessions_ended']} 个登录会话")

    @user.command("reactivate", help="重新启用已停用的账号。")
    @click.argument("login")
    def user_reactivate(login: str) -> None:
        with _service(open_service) as service:
            result = service.set_staff_active(None, login, True)
        click.echo(f"已启用 {result['username']}")

    @user.command("reset-password", help="重置密码：生成一次性密码并打印（首次登录须修改），结束该账号的全部登录会话。")
    @click.argument("login")
    def user_reset(login: str) -> None:
        with _service(open_service) as service:
            result = service.reset_staff_password(None, login)
        click.echo(f"{result['username']} 的一次性密码：{result['password']}（只显示这一次，首次登录须修改）")

    @cli.group(help="部门：代码、名称、窗口电话")
    def department() -> None:
        pass

    @department.command("list", help="列出部门及其未办结的待办、正在计时的事项和在用账号数。")
    def department_list() -> None:
        with _service(open_service) as service:
            service.ensure_departments()
            for d in service.departments(None):
                click.echo(f"{d['code']:<12} {d['name']:<20} {d['phone'] or '':<14} {'在用' if d['active'] else '停用'}  "
                           f"待办 {d['inbox']}，计时 {d['clocks']}，账号 {d['users']}")

    @department.command("add", help="新增部门。")
    @click.argument("code")
    @click.argument("name")
    @click.option("--phone", default=None, help="窗口电话")
    def department_add(code: str, name: str, phone: str | None) -> None:
        with _service(open_service) as service:
            service.add_department(None, code, name, phone)
        click.echo(f"已新增部门 {code}（{name}）")

    @department.command("edit", help="修改部门名称或窗口电话（--activate 重新启用已停用的部门）。")
    @click.argument("code")
    @click.option("--name", default=None)
    @click.option("--phone", default=None)
    @click.option("--activate", is_flag=True)
    def department_edit(code: str, name: str | None, phone: str | None, activate: bool) -> None:
        with _service(open_service) as service:
            current = next((d for d in service.departments(None) if d["code"] == code), None)
            if current is None:
                click.echo(f"部门 {code} 不存在", err=True)
                sys.exit(1)
            result = service.edit_department(None, code, name or current["name"],
                                             current["phone"] if phone is None else phone, True if activate else None)
        click.echo(f"已修改部门 {code}" if result["changed"] else f"部门 {code} 没有变化")

    @department.command("remove", help="删除部门：有未办结待办、正在计时的事项、在用账号或目录事项时拒绝；有历史记录的改为停用。")
    @click.argument("code")
    @click.option("--reason", default=None)
    def department_remove(code: str, reason: str | None) -> None:
        with _service(open_service) as service:
            result = service.remove_department(None, code, reason)
        click.echo(f"已{'停用（有历史记录，保留）' if result['result'] == 'deactivated' else '删除'}部门 {code}")

    @cli.group(help="服务站：乡镇（街道）便民服务中心、邮政网点")
    def station() -> None:
        pass

    @station.command("list", help="列出服务站。")
    def station_list() -> None:
        with _service(open_service) as service:
            for s in service.stations(None):
                click.echo(f"{s['code']:<14} {s['name']:<20} {s['kind']:<14} {s['phone'] or '':<14} "
                           f"{'在用' if s['active'] else '停用'}  账号 {s['users']}")

    @station.command("add", help="新增服务站。KIND：乡镇（街道）便民服务中心 或 邮政网点。")
    @click.argument("code")
    @click.argument("name")
    @click.argument("kind")
    @click.option("--phone", default=None)
    def station_add(code: str, name: str, kind: str, phone: str | None) -> None:
        with _service(open_service) as service:
            service.add_station(None, code, name, kind, phone)
        click.echo(f"已新增服务站 {code}（{name}）")

    @station.command("edit", help="修改服务站名称、类型或电话。")
    @click.argument("code")
    @click.option("--name", default=None)
    @click.option("--kind", default=None)
    @click.option("--phone", default=None)
    def station_edit(code: str, name: str | None, kind: str | None, phone: str | None) -> None:
        with _service(open_service) as service:
            current = next((s for s in service.stations(None) if s["code"] == code), None)
            if current is None:
                click.echo(f"服务站 {code} 不存在", err=True)
                sys.exit(1)
            result = service.edit_station(None, code, name or current["name"], kind or current["kind"],
                                          current["phone"] if phone is None else phone)
        click.echo(f"已修改服务站 {code}" if result["changed"] else f"服务站 {code} 没有变化")

    @station.command("deactivate", help="停用服务站（还有在用账号时拒绝）。")
    @click.argument("code")
    @click.option("--reason", default=None)
    def station_deactivate(code: str, reason: str | None) -> None:
        with _service(open_service) as service:
            service.set_station_active(None, code, False, reason)
        click.echo(f"已停用服务站 {code}")
