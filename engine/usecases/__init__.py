"""The use cases of the 帮办代办 service, one module per capability. A newcomer finds a page's code by its capability:

| module | capability | pages / API |
|---|---|---|
| ``intake`` | applying: the start form, starting a case | 提交申请, ``POST /api/cases`` |
| ``tasks`` | the inbox, a task with its form and context, completing it | 我的待办, 待办, ``/api/tasks`` |
| ``messages`` | 申请终止, 决定终止, 申请延期: which may be sent, their forms, sending | 办件页与待办页的操作 |
| ``reassign`` | 改派: an open task (or a case's lead) to another person; tasks needing it | 时限督办, 办件页, 改派 |
| ``cases`` | reading cases: search, the case page, diagram, documents, application | 办件查询, 办件页 |
| ``documents`` | a case's documents from their templates as HTML and PDF; the public 扫码验真 | 单据打印, PDF, ``/verify`` |
| ``calendar`` | the working-day calendar and the clocks it moves | 工作日历 |
| ``accounts`` | users and units | — |
| ``sessions`` | login (throttled), a request's session, logout, ending sessions, changing one's password | 登录, 修改密码 |
| ``units`` | unit registration, its review, a unit's handlers; unit fields, duplicates | 单位注册, 单位注册审核, 本单位经办人 |
| ``staff`` | staff accounts: search, create, edit, deactivate, reset password, import | 账号管理, 批量导入 |
| ``directory`` | departments and service stations as records; the administrative log | 部门, 服务站, 管理日志 |
| ``versions`` | process versions: list, files, diff, validate, publish, migrate | 流程管理, 建模器 |
| ``audit`` | verify, repair, step through and export a case's history | 审计回放, ``bangban audit`` |
| ``digests`` | signed digests of every case's chain head: make, verify, a case's proof | ``bangban audit digest`` |
| ``keyregister`` | the key-project / key-enterprise register; facts a new case takes from the registers | 重点认定 |
| ``supervision`` | yellow and red items, the demo clock | 时限督办 |
| ``notifications`` | in-app notices (read/unread), channels, delivering the outbox, failures | 通知, 通知渠道, 通知发送失败 |
| ``files`` | case materials: upload (versions), list, download, file checks for audit, gc | 申报材料, ``bangban files gc`` |
| ``timers`` | time passing: due BPMN timers fired case by case | ``bangban worker`` |
| ``step`` | what every writer repeats: load the case locked, run, save state/events/clocks/timers/inbox | — |
| ``base`` | shared state: database, process versions, permissions, forms with choices | — |

Each module holds one small class of use cases; ``engine.services.Bangban`` composes them (and holds no logic). A use
case opens one unit of work, checks access, runs the case through ``engine.runtime`` and saves it through ``step``;
all SQL is in ``engine.repository``.
"""
