"""Resource bombs in a diagram's code: each is refused quickly, with a Chinese message, before it builds gigabytes
or runs for minutes in one C call — in the sandbox itself and through a real case step (case unchanged, process
owners notified, a 4xx for the user, the server's memory untouched). Ordinary code keeps working."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from html import escape
from pathlib import Path

import pytest

from engine import sandbox
from engine.sandbox_guards import resident_bytes
from engine.script_errors import MEMORY_MESSAGE, ScriptRefused
from engine.services import Bangban
from tests import helpers as h
from tests.conftest import actor

ROOT = Path(__file__).resolve().parent.parent
SHARED = "a=[0]*1000000\nL=list(map({0: a}.get, [0]*1000000))\n"   # a million references to one big list
SHARED_TUPLE = "t=tuple(range(1000000))\nL=list(map({0: t}.get, [0]*1000000))\n"

BOMBS = [
    # formatting widths and precisions
    ("eval", "f'{0:>999999999}'", "宽度或精度"),
    ("eval", "f'{0:{w}}'", "宽度或精度"),
    ("eval", "f'{0:>{w}.{w}}'", "宽度或精度"),
    ("eval", "f'{1.5:.999999999f}'", "宽度或精度"),
    ("eval", "'%0999999999d' % 0", "宽度或精度"),
    ("eval", "'%*d' % (999999999, 0)", "宽度或精度"),
    ("eval", "'%.*f' % (999999999, 1.5)", "宽度或精度"),
    ("eval", "b'%0999999999d' % 0", "宽度或精度"),
    ("eval", "'%(a)0999999999d' % {'a': 0}", "宽度或精度"),
    ("eval", "'%(a(b))0999999999d' % {'a(b)': 0}", "宽度或精度"),
    ("exec", "s = '%10000d' * 1000\nx = s % tuple(range(1000))", "过长"),
    # string methods
    ("eval", "('a'*1000).replace('a', 'a'*1000000)", "replace"),
    ("eval", "(b'a'*1000).replace(b'a', b'a'*1000000)", "replace"),
    ("eval", "str.replace('a'*1000, 'a', 'a'*1000000)", "replace"),
    ("eval", "('a'*1000000).replace('', 'xy')", "replace"),
    ("eval", "''.join(['a'*1000000]*1000)", "join"),
    ("eval", "b''.join([b'a'*1000000]*1000)", "join"),
    ("eval", "('x'*1000).join(['a']*1000000)", "join"),
    ("eval", "''.join('a'*1000000 for _ in range(1000))", "内存"),
    ("eval", "'a'.center(999999999)", "宽度"),
    ("eval", "'a'.ljust(999999999)", "宽度"),
    ("eval", "'a'.rjust(999999999, '*')", "宽度"),
    ("eval", "'a'.zfill(999999999)", "宽度"),
    ("eval", "b'a'.zfill(999999999)", "宽度"),
    ("eval", "('\\t'*1000000).expandtabs(1000)", "expandtabs"),
    ("eval", "('a'*1000000).translate({97: 'b'*1000})", "translate"),
    # str()/repr() of large or deeply nested containers
    ("eval", "str([[0]*1000000]*1000000)", "过大"),
    ("eval", "f'{[[0]*1000]*3000!r}'", "过长"),
    ("exec", SHARED + "x = str(L)", "过长"),
    ("exec", SHARED + "x = f'{L}'", "过长"),
    ("exec", SHARED + "x = '%(k)s' % {'k': L}", "过长"),
    ("exec", SHARED + "x = str({'k': L})", "过长"),
    ("exec", SHARED + "x = str(set(map(tuple, [a[:10]]*10)) and {'k': (L,)})", "过大"),
    ("exec", "t = ()\nfor i in range(1000):\n    t = ((((((((((t,),),),),),),),),),)", "嵌套"),
    ("exec", "L = []\nfor i in range(200):\n    L = [L]\nx = str(L)", "嵌套超过 100 层"),
    # sum over sequences, nested multiplications
    ("eval", "sum([[0]*1000]*10000, [])", "过大"),
    ("eval", "sum([[0]*100]*1000, [])", "sum 只能对数字求和"),
    ("eval", "sum([(0,)*100]*1000, ())", "sum 只能对数字求和"),
    ("eval", "sum(['a'*1000]*10000, '')", "sum 只能对数字求和"),
    ("exec", "a=[0]*1000000\nL=[a]*1000", "过大"),
    ("exec", "s=''.join(['a']*1000000)\nt=s*1000", "过大"),
    # comparisons and sorts walking a million references to a million-element list
    ("exec", SHARED + "M=list(map({0: [0]*1000000}.get, [0]*1000000))\nx = L == M", "比较"),
    ("exec", SHARED + "x = L < L[:]", "比较"),
    ("exec", SHARED + "x = [0]*1000000 in L", "in"),
    ("exec", SHARED + "x = sorted(L)", "排序"),
    ("exec", SHARED + "x = max(L)", "排序"),
    ("exec", SHARED + "x = min(L)", "排序"),
    ("exec", SHARED + "L.sort()", "排序"),
    ("exec", SHARED + "x = L.count([0]*1000000)", "查找"),
    ("exec", "a=[0]*1000000\nx = sorted(range(100000), key=lambda i: a)", "键过大"),
    # hashing tuples (not cached, and recursive)
    ("exec", "t=()\nfor i in range(100):\n    t=(t,t)", "超时"),
    ("exec", "t=(0,)\nfor i in range(100):\n    t=t+t", "过大"),
    ("exec", "t=((0,)*1000000,)\nu=t*1000", "过大"),
    ("exec", SHARED_TUPLE + "s = set(L)", "元组"),
    ("exec", SHARED_TUPLE + "d = dict.fromkeys(L)", "元组"),
    ("exec", SHARED_TUPLE + "d = dict(zip(L, L))", "过大"),
    ("exec", "a=tuple(range(1000000))\nL=tuple(map({0: a}.get, [0]*1000))", "元组"),
    ("exec", SHARED_TUPLE + "s = {*L}", "元组"),
    ("exec", SHARED_TUPLE + "s = set()\ns.update(L)", "元组"),
    ("exec", SHARED_TUPLE + "s = set().union(L)", "元组"),
    # one line repeating a copy: the memory is checked before each large one
    ("exec", "L=[0]*1000000\nx=[" + "list(L)," * 400 + "]", "内存"),
    ("exec", "L=[0]*1000000\nx=[" + "[*L]," * 400 + "]", "内存"),
    ("exec", "L=[0]*1000000\nx=[" + "L[:]," * 400 + "]", "内存"),
    ("exec", "L=[0]*1000000\nx=[" + "L.copy()," * 400 + "]", "内存"),
    # a C function applied to a million references to one big string, inside one C call
    ("exec", "L=['a'*1000000]*1000000\nx=all(map(str.upper, L))", "超时"),
    ("exec", "L=['a'*1000000]*1000000\nx=list(filter(str.upper, L))", "超时"),
    ("exec", "L=['a'*1000000]*1000000\nx=list(map(str.upper, L))", "内存"),
    ("exec", "L=['a'*1000000]*1000000\nx=sorted(L, key=str.upper)", "内存"),
    # integers, ranges, lists
    # calls spreading arguments (f(*a), f(**k)) copy them
    ("exec", "L=[0]*1000000\nx=max(*map(list, [L for i in range(1000)]))", "内存"),
    ("exec", "a=[0]*1000000\nx=sorted(*[[a]*1000000])", "过大"),
    ("eval", "round(5, -10**8)", "round"),
    ("eval", "int('f'*1000000, 16)", "整数过大"),
    ("eval", "(0).from_bytes(b'\\xff'*1000000, 'big')", "from_bytes"),
    ("eval", "list(range(10**7))", "range"),
    ("exec", "L=[0]\nfor i in range(60):\n    L.extend(L)", "extend"),
    ("exec", "L=[0]*1000000\nfor i in range(10000):\n    L = L + [i]", "过大"),
    ("exec", "d = dict.fromkeys(range(1000000), [0]*1000000)", "过大"),
    ("exec", "d = {i: [i]*100 for i in range(1000000)}", "超时"),
    # memory and time
    ("exec", "L=[]\nfor i in range(100000):\n    L.append(list(range(1000)))", "内存"),
    ("exec", "while True:\n    pass", "超时"),
    # what a script keeps in the case's data is bounded (it is stored and serialized)
    ("exec", SHARED + "kept = L", "过大或嵌套过深"),
]


@pytest.mark.parametrize(("mode", "source", "expected"), BOMBS, ids=[b[1][:60] for b in BOMBS])
def test_a_bomb_is_refused_quickly_in_the_sandbox(mode, source, expected, monkeypatch):
    if expected != "超时":     # a slow machine must not turn the refusal under test into a timeout
        monkeypatch.setattr(sandbox, "MAX_SECONDS", 4.0)
    run = sandbox.evaluate if mode == "eval" else sandbox.execute
    before, started = resident_bytes(), time.perf_counter()
    with pytest.raises(sandbox.SandboxViolation, match=expected) as refused:
        run(source, {"w": 999999999}, {})
    assert time.perf_counter() - started < 6
    assert resident_bytes() - before < 400 * 1024 * 1024
    assert any("\u4e00" <= ch <= "\u9fff" for ch in str(refused.value))


def test_int_of_a_long_decimal_string_is_refused_by_python_itself():
    with pytest.raises(ValueError, match="4300"):
        sandbox.evaluate("int('9'*1000000)", {}, {})


ORDINARY = [
    ("decision == '同意'", {"decision": "同意"}, True),
    ("f'{x:>5}|{y:.2f}|{n:,}|{x!r}|{n:{w}}'", {"x": "a", "y": 3.14159, "n": 12345, "w": 7},
     "    a|3.14|12,345|'a'|  12345"),
    ("'%s-%05d-%.1f-%(k)s' % {'k': 1} if False else '%s-%05d-%.1f-%*d' % ('a', 42, 2.25, 3, 7)", {}, "a-00042-2.2-  7"),
    ("'%(name)s：%(n)d 项' % {'name': '环评', 'n': 2}", {}, "环评：2 项"),
    ("b'%s=%d' % (b'x', 1)", {}, b"x=1"),
    ("'a-b'.replace('-', '+') + str.replace('a', 'a', 'bb')", {}, "a+bbb"),
    ("'、'.join(['甲', '乙']) + '、'.join(x for x in 'ab')", {}, "甲、乙a、b"),
    ("'a'.center(5, '*') + '7'.zfill(3) + 'a\\tb'.expandtabs(4) + 'x'.ljust(2) + 'y'.rjust(2)", {},
     "**a**007a   bx  y"),
    ("'abc'.translate({97: 'AA'})", {}, "AAbc"),
    ("sorted([3, 1, 2], reverse=True) + sorted(['bb', 'a'], key=len)", {}, [3, 2, 1, "a", "bb"]),
    ("(max([1, 5, 3]), min(1, 2), max([], default=0), max([[1], [2]]), min('ab', key=len))", {},
     (5, 1, 0, [2], "a")),
    ("(sum([1, 2, 3]), sum([0.5, 0.5], 1), round(2.567, 2), round(1234, -2), int('42'), int('ff', 16))", {},
     (6, 2.0, 2.57, 1200, 42, 255)),
    ("(str([1, 'a']), str(), tuple([1, 2]), set([1, 1]), dict(a=1), dict([('b', 2)]), dict.fromkeys(['c'], 0))", {},
     ("[1, 'a']", "", (1, 2), {1}, {"a": 1}, {"b": 2}, {"c": 0})),
    ("(isinstance('a', str), isinstance({}, dict), isinstance(1, (str, int)), isinstance((), tuple), str.upper('a'))",
     {}, (True, True, True, True, "A")),
    ("((1, 2) in {(1, 2)}, [1] == [1], 1 < 2 < 3, 'a' in ['a'], [1, 2] in [[1, 2]], {'a': [1]} != {'a': [2]})", {},
     (True, True, True, True, True, True)),
    ("[d['n'] for d in sorted(items, key=lambda d: d['n'])]", {"items": [{"n": 2}, {"n": 1}]}, [1, 2]),
    ("list(zip([1], [2])) + list(enumerate('a')) + list(map(len, ['ab'])) + list(filter(None, [0, 3]))", {},
     [(1, 2), (0, "a"), 2, 3]),
    ("([*l, 3], {**d, 'b': 2}, {*l}, (*l,), l[:1], l.copy(), list('ab'), isinstance(l, list))",
     {"l": [1, 2], "d": {"a": 1}}, ([1, 2, 3], {"a": 1, "b": 2}, {1, 2}, (1, 2), [1], [1, 2], ["a", "b"], True)),
    ("(s.union([3]), s.issubset([1, 2, 5]), d.update([('k', 1)], z=2) or d)", {"s": {1, 2}, "d": {}},
     ({1, 2, 3}, True, {"k": 1, "z": 2})),
    ("2 ** 10 + (1 << 3) + 7 % 3 + len('x' * 3) + len([0] * 2 + [1])", {}, 1024 + 8 + 1 + 3 + 3),
    # calls with *args and **kwargs (RestrictedPython's _apply_)
    ("(max(*l), min(*l, 0), str(*['a']), dict(**d, b=2), sorted(*[l], reverse=True), f'{max(*l)}')",
     {"l": [1, 2], "d": {"a": 1}}, (2, 0, "a", {"a": 1, "b": 2}, [2, 1], "2")),
]


@pytest.mark.parametrize(("source", "context", "expected"), ORDINARY, ids=[o[0][:50] for o in ORDINARY])
def test_ordinary_expressions_keep_working(source, context, expected):
    assert sandbox.evaluate(source, dict(context), {}) == expected


def test_ordinary_scripts_keep_working():
    context = {"items": [{"code": "hp", "department": "sthj"}, {"code": "xf", "department": "zjj"}]}
    sandbox.execute(textwrap.dedent("""\
        depts = []
        for item in items:
            if item['department'] not in depts:
                depts.append(item['department'])
        depts.sort()
        summary = '、'.join(depts)
        counts = {}
        for d in depts:
            counts[d] = counts.get(d, 0) + 1
        label = f"共 {len(items)} 项：{summary}"
        pair = (len(depts), summary)
        text = '%s（%d）' % (summary, len(depts))
        total = 0
        total += 5
        total %= 3
        codes = list(map(lambda i: i['code'], items))
        codes.extend(['gd'])
        where = codes.index('gd')
        """), context, {})
    assert context["summary"] == "sthj、zjj" and context["label"] == "共 2 项：sthj、zjj"
    assert context["pair"] == (2, "sthj、zjj") and context["text"] == "sthj、zjj（2）"
    assert context["counts"] == {"sthj": 1, "zjj": 1} and context["total"] == 2 and context["where"] == 2


def test_keyword_arguments_starting_with_an_underscore_are_refused():
    with pytest.raises(sandbox.SandboxViolation, match="下划线"):
        sandbox.evaluate("f(**{'_x': 1})", {"f": lambda **k: k}, {})


def test_varargs_parameters_are_refused_when_checked():
    assert sandbox.check("f = lambda *a: a", "exec") != []
    assert "*a" in sandbox.check("f = lambda *a: a", "exec")[0]


def test_a_memory_error_inside_a_script_is_a_violation():
    def helper():
        raise MemoryError

    with pytest.raises(sandbox.SandboxViolation, match="内存"):
        sandbox.execute("x = helper()", {}, {"helper": helper})


def test_an_address_space_limit_reached_by_a_script_is_a_violation_not_a_crash():
    """In a process under ``RLIMIT_AS`` (as a worker may run), the allocation fails and the script is refused."""
    code = textwrap.dedent("""\
        import resource, sys
        from engine import sandbox, sandbox_guards
        sandbox_guards.MAX_MEMORY_MB = 10**6          # let the address-space limit be the one that stops it
        sandbox.MAX_SECONDS = 120.0                   # (and not the time limit, on a busy machine)
        vm = int(open('/proc/self/statm').read().split()[0]) * 4096
        resource.setrlimit(resource.RLIMIT_AS, (vm + 300 * 2**20, resource.RLIM_INFINITY))
        try:
            sandbox.execute('L = []\\nfor i in range(1000):\\n    L.append(list(range(1000000)))', {}, {})
        except sandbox.SandboxViolation as exc:
            print('refused:', exc)
        """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "refused: 流程脚本占用内存超过服务器允许的上限" in out.stdout


# ---- through a real case step ----------------------------------------------------------------------------------
STEP_BOMBS = [
    "x = f'{0:>999999999}'",
    "x = '%0999999999d' % 0",
    "x = ('a'*1000).replace('a', 'a'*1000000)",
    "x = str([[0]*1000000]*1000000)",
    "x = sum([[0]*100]*1000, [])",
    SHARED.replace("\n", "\n") + "x = sorted(L)",
    "L = []\nfor i in range(100000):\n    L.append(list(range(1000)))",
]


def _with_script(files: dict, extra: str) -> dict:
    bpmn = files["bangban_case.bpmn"].decode()
    old = "items = catalogue_items(service_items)"
    assert old in bpmn
    return dict(files, **{"bangban_case.bpmn": bpmn.replace(old, f"{old}\n{escape(extra, quote=False)}").encode()})


@pytest.mark.parametrize("bomb", STEP_BOMBS, ids=[b[:40] for b in STEP_BOMBS])
def test_a_bomb_in_a_script_task_fails_only_that_case(svc, db, process_files, bomb):
    good_case = h.start(svc)
    bombing = Bangban.open(db, _with_script(process_files, bomb))
    bad_case = h.start(bombing)
    h.accept_and_commission(bombing, bad_case)
    before, rss = h.snapshot(bombing, bad_case), resident_bytes()
    started = time.perf_counter()
    with pytest.raises(ScriptRefused) as refused:
        h.dispatch(bombing, bad_case, ["hp"])
    assert time.perf_counter() - started < 10
    assert resident_bytes() - rss < 1024 * 1024 * 1024               # no gigabytes, whatever the bomb
    assert 400 <= refused.value.status < 500
    assert refused.value.message.startswith("流程运行出错（已通知流程管理员，办件保持原状）：")
    assert h.snapshot(bombing, bad_case) == before                     # the case is left exactly as it was
    notes = bombing.notifications(actor(bombing, "owner1"))
    assert any(bad_case in n["text"] and "流程运行出错" in n["text"] for n in notes)
    h.accept_and_commission(svc, good_case)                            # the service and the other case go on
    h.dispatch(svc, good_case, ["hp"])
    assert [t["name"] for t in svc.inbox(actor(svc, "zb_sthj")) if t["case_no"] == good_case] == ["部门办理"]


def test_a_memory_error_in_a_step_is_refused_like_a_bomb(svc, db, process_files, monkeypatch):
    """A ``MemoryError`` (an address-space limit) raised while a script runs is reported, not a 500."""
    case_no = h.start(svc)
    h.accept_and_commission(svc, case_no)
    before = h.snapshot(svc, case_no)

    def out_of_memory(source, context, helpers):
        raise MemoryError

    monkeypatch.setattr(sandbox, "execute", out_of_memory)
    with pytest.raises(ScriptRefused, match=MEMORY_MESSAGE) as refused:
        h.dispatch(svc, case_no, ["hp"])
    assert refused.value.status == 422
    assert h.snapshot(svc, case_no) == before
    assert any(case_no in n["text"] for n in svc.notifications(actor(svc, "owner1")))


def test_a_bomb_through_the_api_is_a_chinese_422(svc, db, process_files):
    from tests.test_web import ACCEPT, COMMISSION, RecordingClient, api_complete, api_start, api_task
    from tests.webclient import api_login, assert_json_error
    from web import create_app

    bombing = Bangban.open(db, _with_script(process_files, "x = '%0999999999d' % 0"))
    app = create_app({"BANGBAN_SERVICE": bombing, "SECRET_KEY": "test", "TESTING": True})
    app.test_client_class = RecordingClient
    app.extensions["test_responses"] = []
    case_no = api_start(api_login(app, "huarui"))
    agent = api_login(app, "agent1")
    api_complete(agent, case_no, "受理审核", ACCEPT)
    api_complete(agent, case_no, "材料交接并签订委托书", COMMISSION)
    task_id = api_task(agent, case_no, "分派服务事项")
    r = agent.post(f"/api/tasks/{task_id}/complete", json={"service_items": ["hp"]})
    assert_json_error(r, 422, "宽度或精度")
    assert "Traceback" not in r.get_data(as_text=True)
    assert api_task(agent, case_no, "分派服务事项") == task_id          # still open: nothing happened


def test_a_bomb_when_a_case_starts_stores_nothing_and_tells_the_owners(svc, db, process_files):
    """A script that runs as the case starts (a pre-script of the first task): the applicant gets the Chinese
    error, no case and no case number are stored, the process owners are told."""
    bpmn = process_files["bangban_case.bpmn"].decode()
    old = '<bpmn:userTask id="Task_Review" name="受理审核">\n      <bpmn:extensionElements>'
    assert old in bpmn
    bomb = escape("x = str([[0]*1000000]*1000000)", quote=False)
    bombing = Bangban.open(db, dict(process_files, **{"bangban_case.bpmn": bpmn.replace(
        old, f"{old}\n        <spiffworkflow:preScript>{bomb}</spiffworkflow:preScript>").encode()}))
    cases_before = bombing.search_cases(actor(bombing, "agent1"))["total"]
    with pytest.raises(ScriptRefused) as refused:
        h.start(bombing)
    assert 400 <= refused.value.status < 500 and refused.value.message.startswith("流程运行出错")
    assert bombing.search_cases(actor(bombing, "agent1"))["total"] == cases_before
    notes = bombing.notifications(actor(bombing, "owner1"))
    assert any(n["text"].startswith("提交申请时流程运行出错，申请未保存") for n in notes), notes
    assert h.start(svc)                                      # the published version still takes applications


def test_widths_in_other_scripts_digits_are_checked_and_other_digits_left_to_python():
    """Python reads any Unicode decimal digit in a width (``'٩٩٩٩٩٩٩٩٩'`` is 999999999); ``²`` is no decimal: the
    format is Python's own error, not a failure of the guard."""
    with pytest.raises(sandbox.SandboxViolation, match="999999999"):
        sandbox.evaluate("f'{0:>\u0669\u0669\u0669\u0669\u0669\u0669\u0669\u0669\u0669}'", {}, {})
    with pytest.raises(ValueError, match="format") as raised:
        sandbox.evaluate("f'{0:>\u00b2}'", {}, {})
    assert "int()" not in str(raised.value)
