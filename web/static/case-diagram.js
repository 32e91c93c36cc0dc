/* The case page's diagram: the BPMN of the case's own version in the bpmn-js NavigatedViewer, with what has been
   done (green) and what is open now (blue). Data: GET /api/cases/<no>/diagram → {xml, completed, current, tasks}. */
(function () {
  'use strict';

  var box = document.getElementById('case-diagram');
  if (!box) { return; }
  var status = document.getElementById('case-diagram-status');
  var card = document.getElementById('diagram-card');

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? 'error' : 'muted';
  }

  if (typeof window.BpmnJS !== 'function' || !window.BangbanDiagram) {
    say('流程图组件未加载（bpmn-js 未安装：请用 ./run 安装前端依赖）。', true);
    box.setAttribute('data-state', 'error');
    return;
  }
  var D = window.BangbanDiagram;
  var viewer = new window.BpmnJS({ container: box, textRenderer: { defaultStyle: { fontFamily: D.FONT, fontSize: 12 } } });
  window.bangbanCaseViewer = viewer;
  var current = [];
  D.wireTools(card, viewer, function () { return current; });

  function mark(data) {
    var canvas = viewer.get('canvas');
    var registry = viewer.get('elementRegistry');
    var overlays = viewer.get('overlays');
    var done = {};
    (data.completed || []).forEach(function (id) { done[id] = true; });
    var open = {};
    (data.current || []).forEach(function (id) { open[id] = true; });
    current = (data.current || []).filter(function (id) { return registry.get(id); });

    registry.forEach(function (element) {
      var id = element.id;
      if (element.type === 'label') { return; }
      if (element.waypoints) {
        var s = element.source && element.source.id, t = element.target && element.target.id;
        if (element.type === 'bpmn:SequenceFlow' && done[s] && (done[t] || open[t])) {
          canvas.addMarker(id, 'bb-done');
        }
        return;
      }
      var container = D.isContainer(element);
      if (open[id]) {
        canvas.addMarker(id, container ? 'bb-current-container' : 'bb-current');
      } else if (done[id]) {
        canvas.addMarker(id, container ? 'bb-done-container' : 'bb-done');
      }
    });

    // several open instances of one task (a multi-instance 部门办理): a count badge with their titles
    var byElement = {};
    (data.tasks || []).forEach(function (t) { (byElement[t.element] = byElement[t.element] || []).push(t); });
    Object.keys(byElement).forEach(function (id) {
      var tasks = byElement[id];
      if (tasks.length < 2 || !registry.get(id)) { return; }
      var badge = document.createElement('span');
      badge.className = 'bb-count';
      badge.textContent = '×' + tasks.length;
      badge.title = tasks.map(function (t) { return t.title || t.name; }).join('、');
      overlays.add(id, 'bb-count', { position: { top: -9, right: 10 }, html: badge });
    });

    var names = [];
    (data.tasks || []).forEach(function (t) {
      var label = t.name + (t.title ? '（' + t.title + '）' : '');
      if (names.indexOf(label) < 0) { names.push(label); }
    });
    box.setAttribute('data-completed', Object.keys(done).join(' '));
    box.setAttribute('data-current', current.join(' '));
    say(names.length ? '当前待办：' + names.join('、') + '。拖动可平移，滚轮缩放（按住 Ctrl）。'
      : '本办件没有未办的待办。拖动可平移，滚轮缩放（按住 Ctrl）。', false);
    if (current.length) { D.focus(viewer, current, 0.75); } else { D.fit(viewer); }
  }

  D.requestJSON(box.getAttribute('data-src')).then(function (result) {
    if (!result.ok) { throw new Error(result.body.message || ('HTTP ' + result.status)); }
    if (!result.body.xml) { throw new Error('本办件的流程版本中没有流程图'); }
    return viewer.importXML(result.body.xml).then(function () { return result.body; });
  }).then(function (data) {
    mark(data);
    box.setAttribute('data-state', 'ready');
  }).catch(function (err) {
    box.setAttribute('data-state', 'error');
    say('流程图无法显示：' + (err && err.message ? err.message : err), true);
  });
}());
