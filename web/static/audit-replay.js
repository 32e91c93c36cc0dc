/* The auditor's replay: step through a case's events; the diagram shows where the case was after each one
   (done: green, open: blue), with who did what and the values before and after. */
(function () {
  'use strict';
  var box = document.getElementById('case-diagram');
  var data = JSON.parse(document.getElementById('audit-data').textContent);
  var status = document.getElementById('case-diagram-status');
  var detail = document.getElementById('step-detail');
  var range = document.getElementById('step-range');
  var D = window.BangbanDiagram;
  var viewer = null;
  var step = 0;

  function esc(text) {
    var div = document.createElement('div');
    div.textContent = text === null || text === undefined ? '' : String(text);
    return div.innerHTML;
  }

  function show(value) {
    if (value === null || value === undefined || value === '') { return '（无）'; }
    return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }

  function markStep(s) {
    if (!viewer) { return; }
    var canvas = viewer.get('canvas');
    var registry = viewer.get('elementRegistry');
    registry.forEach(function (el) {
      ['bb-done', 'bb-current', 'bb-done-container', 'bb-current-container'].forEach(function (m) { canvas.removeMarker(el.id, m); });
    });
    var done = {}, open = {};
    (s.state.completed || []).forEach(function (id) { done[id] = true; });
    (s.state.current || []).forEach(function (id) { open[id] = true; });
    registry.forEach(function (el) {
      if (el.type === 'label' || el.waypoints) { return; }
      var container = D.isContainer(el);
      if (open[el.id]) { canvas.addMarker(el.id, container ? 'bb-current-container' : 'bb-current'); }
      else if (done[el.id]) { canvas.addMarker(el.id, container ? 'bb-done-container' : 'bb-done'); }
    });
  }

  function render(index) {
    step = Math.max(0, Math.min(data.steps.length - 1, index));
    var s = data.steps[step];
    document.getElementById('step-no').textContent = step + 1;
    range.value = step + 1;
    var e = s.event;
    var rows = (s.change_rows || []).map(function (c) {
      return '<tr><td>' + esc(c.title) + '</td><td>' + esc(show(c.before)) + '</td><td>' + esc(show(c.after)) + '</td></tr>';
    }).join('');
    var fields = (e.fields || []).map(function (f) {
      return '<dt>' + esc(f.title) + '</dt><dd>' + esc(f.value) + '</dd>';
    }).join('');
    var openTasks = (s.state.open || []).map(function (t) {
      return esc(t.name + (t.title ? '（' + t.title + '）' : ''));
    }).join('、');
    detail.innerHTML = '<h2>第 ' + (step + 1) + ' 步：' + esc(e.label) + ' ' + esc(e.task || '') + '</h2>' +
      '<p>' + esc(e.actor) + (e.role ? '（' + esc(e.role) + '）' : '') + (e.summary ? '：' + esc(e.summary) : '') +
      ' <span class="muted">事件哈希 ' + esc((e.hash || '').slice(0, 16)) + '…</span></p>' +
      (fields ? '<dl class="facts small">' + fields + '</dl>' : '') +
      (rows ? '<h3>数据变化</h3><table class="list compact" id="step-changes"><thead><tr><th>字段</th><th>之前</th><th>之后</th></tr></thead><tbody>' + rows + '</tbody></table>' : '') +
      '<p>此步之后的待办：<span id="step-open">' + (openTasks || '（无）') + '</span></p>';
    Array.prototype.forEach.call(document.querySelectorAll('#audit-steps li'), function (li) {
      li.className = Number(li.getAttribute('data-step')) === step + 1 ? 'current-step' : '';
    });
    markStep(s);
  }

  document.getElementById('step-prev').addEventListener('click', function () { render(step - 1); });
  document.getElementById('step-next').addEventListener('click', function () { render(step + 1); });
  range.addEventListener('input', function () { render(Number(range.value) - 1); });
  Array.prototype.forEach.call(document.querySelectorAll('.step-link'), function (a) {
    a.addEventListener('click', function (ev) { ev.preventDefault(); render(Number(a.getAttribute('data-step')) - 1); });
  });

  render(0);
  if (typeof window.BpmnJS !== 'function' || !D) {
    status.textContent = '流程图组件未加载：下面按文字显示每一步的状态。';
    return;
  }
  viewer = new window.BpmnJS({ container: box, textRenderer: { defaultStyle: { fontFamily: D.FONT, fontSize: 12 } } });
  window.bangbanAuditViewer = viewer;
  D.wireTools(document.getElementById('diagram-card'), viewer, function () { return data.steps[step].state.current || []; });
  D.requestJSON(box.getAttribute('data-src')).then(function (res) {
    if (!res.ok || !res.body.xml) { throw new Error((res.body && res.body.message) || '无法加载流程图'); }
    return viewer.importXML(res.body.xml);
  }).then(function () {
    status.textContent = '绿色：到此步为止已办理；蓝色：此步之后的待办。流程图为办件当前所用版本。';
    box.setAttribute('data-state', 'ready');
    D.fit(viewer);
    render(step);
  }).catch(function (err) {
    status.textContent = '流程图加载失败：' + err.message;
    box.setAttribute('data-state', 'error');
  });
})();
