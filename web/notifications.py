"""Pages of notifications: one's notices (read/unread, 全部标为已读), one's channels (/account/notifications), and the
deliveries that failed for good with a 重试 button (supervisor, system administrator). The badge in the navigation
comes from ``svc.unread_notices`` in base.html."""
from __future__ import annotations

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for

from engine.errors import InvalidInput

from .auth import check_csrf, login_required, permission_required, service

bp = Blueprint("notifications", __name__)


@bp.get("/notifications")
@login_required
def notices():
    return render_template("notifications/list.html", notices=service().notifications(g.actor, limit=200))


@bp.post("/notifications/<notice_id>/open")
@login_required
def open_notice(notice_id: str):
    check_csrf()
    target = service().open_notice(g.actor, notice_id)
    return redirect(target or url_for("notifications.notices"))


@bp.post("/notifications/read-all")
@login_required
def read_all():
    check_csrf()
    count = service().mark_all_notices_read(g.actor)
    flash(f"已将 {count} 条通知标为已读" if count else "没有未读通知")
    return redirect(url_for("notifications.notices"))


@bp.post("/api/notifications/read-all")
@login_required
def api_read_all():
    return jsonify({"marked": service().mark_all_notices_read(g.actor), "unread": 0})


@bp.route("/account/notifications", methods=["GET", "POST"])
@login_required
def channels():
    error, status = None, 200
    if request.method == "POST":
        check_csrf()
        try:
            service().set_notification_channels(g.actor, request.form.getlist("channel")[:10])
        except InvalidInput as exc:
            error, status = exc.message, exc.status
        else:
            flash("通知渠道已保存")
            return redirect(url_for("notifications.channels"))
    return render_template("notifications/channels.html", view=service().notification_channels(g.actor),
                           error=error), status


@bp.get("/notifications/failures")
@permission_required("notification_failures")
def failures():
    return render_template("notifications/failures.html", rows=service().failed_deliveries(g.actor))


@bp.post("/notifications/deliveries/<delivery_id>/retry")
@permission_required("notification_failures")
def retry(delivery_id: str):
    check_csrf()
    row = service().retry_delivery(g.actor, delivery_id)
    flash(f"已重新排队发送：{row['who']}（{row['channel']}）")
    return redirect(url_for("notifications.failures"))
