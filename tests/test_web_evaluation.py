"""The applicant rates a 已办结 case from the evaluation invitation: notice → case page → the task → 评价表; the case
page lists the evaluations with the national five-level equivalent and counts 未评价 apart."""
from __future__ import annotations

import re

import pytest

from tests.test_web import (
    ACCEPT,
    COMMISSION,
    DELIVER,
    DEPT_NAMES,
    api_complete,
    api_start,
    app,  # noqa: F401  (the fixture)
    html_task,
    inbox_task,
)
from tests.webclient import api_login, html_login, token

pytestmark = pytest.mark.usefixtures("all_cases_verified")


def test_the_applicant_rates_a_completed_case_from_the_invitation(app):  # noqa: F811
    huarui_api = api_login(app, "huarui")
    case_no = api_start(huarui_api)
    agent = api_login(app, "agent1")
    api_complete(agent, case_no, "受理审核", ACCEPT)
    api_complete(agent, case_no, "材料交接并签订委托书", COMMISSION)
    api_complete(agent, case_no, "分派服务事项", {"service_items": ["hp"]})
    api_complete(api_login(app, "zb_sthj"), case_no, "部门办理", {"item_decision": "准予许可", "licence_no": "武环审〔2026〕9号"},
                 "环评")
    api_complete(agent, case_no, "汇总办理结果", {"results_collected": True})
    api_complete(agent, case_no, "统一送达", DELIVER)
    api_complete(huarui_api, case_no, "签收办结单", {"results_received": True})

    huarui = html_login(app, "huarui")
    listing = huarui.get("/notifications")
    assert listing.status_code == 200 and "请对帮办代办服务进行综合评价" in listing.text
    notices = huarui_api.get("/api/notifications").json["notifications"]
    invitation = [n for n in notices if "进行综合评价" in n["text"]]
    assert len(invitation) == 1 and not invitation[0]["read"]
    opened = huarui.post(f"/notifications/{invitation[0]['id']}/open", data={"csrf_token": token(listing.text)})
    assert opened.status_code == 302 and "/tasks/" in opened.headers["Location"]     # straight to the rating form
    page = huarui.get(f"/cases/{case_no}")
    assert 'id="case-status">已办结<' in page.text
    assert "全案办结期限" not in page.text          # the evaluation deadlines are not the case's own
    # The rating is an open task of the 已办结 case, one click from the case page.
    link = re.search(r'<td>评价代办服务</td>.*?href="(/tasks/[^"]+)"', page.text, re.S)
    assert link, page.text[:3000]
    assert opened.headers["Location"].endswith(link.group(1))
    assert 'id="evaluations"' in page.text and "待评价" in page.text
    flash = html_task(huarui, link.group(1).split("/")[-1], {"rating": "不满意", "comments": "送达较慢"})
    assert "已出具评价表" in flash
    page = huarui.get(f"/cases/{case_no}")
    section = page.text[page.text.index('id="evaluations"'):page.text.index('id="diagram-card"')]
    assert "已评价1项" in section and "未评价0项" in section
    assert "<td>不满意</td><td>不满意</td><td>送达较慢</td>" in section      # seed level, national level, comment
    assert "待回访" in section                                          # a 差评: the county bureau calls back
    window = html_login(app, "window1")
    assert DEPT_NAMES["sthj"] in window.get("/inbox").text
    supervisor = html_login(app, "supervisor1")
    board = supervisor.get("/supervision")                          # the 1-working-day 回访 is yellow at once
    assert board.status_code == 200 and "差评回访（牵头代办人）" in board.text and "None" not in board.text
    callback_id = inbox_task(supervisor, case_no, "差评回访", "牵头代办人")
    task_page = supervisor.get(f"/tasks/{callback_id}").text
    assert "差评回访" in task_page and "综合评价" in task_page and "送达较慢" in task_page
    for internal in ("kind", "rater", "limit_days", "poor", "followup", "unit:"):
        assert internal not in task_page.split("<form", 1)[0].split("</header>")[-1], internal
    flash = html_task(supervisor, callback_id,
                      {"callback_method": "电话回访", "callback_record": "申请单位反映送达较慢"}, ("callback_method",))
    assert flash
    agent_inbox = html_login(app, "agent1").get("/inbox").text
    assert "差评整改" in agent_inbox
