/* The process owner's modeler: the latest version's BPMN in the bpmn-js Modeler, the JSON files (forms, catalogue,
   manifest) as text, 校验 (POST /api/processes/validate) and 发布 (POST /api/processes/publish).

   The BPMN is exported with saveXML({format: false}): never pretty-printed, because scripts are indentation-sensitive.
   bpmn-js does not know the spiffworkflow namespace; it keeps its extension elements as generic elements on the
   round trip, and the properties panel below reads and writes them as such (moddle.createAny). */
(function () {
  'use strict';

  var SPIFF_NS = 'http://spiffworkflow.org/bpmn/schema/1.0/core';
  var TYPE_NAMES = {
    'bpmn:UserTask': '用户任务', 'bpmn:ScriptTask': '脚本任务', 'bpmn:ServiceTask': '服务任务', 'bpmn:ManualTask': '人工任务',
    'bpmn:Task': '任务', 'bpmn:SendTask': '发送任务', 'bpmn:ReceiveTask': '接收任务', 'bpmn:BusinessRuleTask': '业务规则任务',
    'bpmn:CallActivity': '调用活动', 'bpmn:SubProcess': '子流程', 'bpmn:StartEvent': '开始事件', 'bpmn:EndEvent': '结束事件',
    'bpmn:IntermediateCatchEvent': '中间捕获事件', 'bpmn:IntermediateThrowEvent': '中间抛出事件', 'bpmn:BoundaryEvent': '边界事件',
    'bpmn:ExclusiveGateway': '排他网关', 'bpmn:ParallelGateway': '并行网关', 'bpmn:InclusiveGateway': '包容网关',
    'bpmn:EventBasedGateway': '事件网关', 'bpmn:SequenceFlow': '连线', 'bpmn:Lane': '泳道', 'bpmn:Participant': '参与者',
    'bpmn:Process': '流程', 'bpmn:Collaboration': '协作', 'bpmn:TextAnnotation': '注释', 'bpmn:Group': '分组',
    'bpmn:DataObjectReference': '数据对象', 'bpmn:DataStoreReference': '数据存储', 'bpmn:MessageFlow': '消息流'
  };
  var NEW_FORM = '{\n  "$schema": "https://json-schema.org/draft/2020-12/schema",\n  "title": "新表单",\n  "type": "object",\n' +
    '  "properties": {},\n  "required": []\n}\n';

  var $ = function (id) { return document.getElementById(id); };
  var D = window.BangbanDiagram;
  var result = $('modeler-result');

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') { node.textContent = attrs[k]; }
      else if (k === 'className') { node.className = attrs[k]; }
      else if (k.slice(0, 2) === 'on') { node.addEventListener(k.slice(2), attrs[k]); }
      else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); } });
    return node;
  }

  function showMessage(text, kind, extra) {
    result.textContent = '';
    result.appendChild(el('div', { className: kind === 'ok' ? 'ok' : 'error', id: 'modeler-message', text: text }, extra || []));
  }

  if (typeof window.BpmnJS !== 'function' || !D) {
    showMessage('流程建模组件未加载（bpmn-js 未安装：请用 ./run 安装前端依赖）。', 'error');
    return;
  }

  // ---- state -------------------------------------------------------------------------------------------------
  var base = JSON.parse($('process-version').textContent);
  var original = JSON.parse($('process-files').textContent);     // name -> text of the base version
  var texts = Object.assign({}, original);                       // name -> current text
  var bpmnNames = Object.keys(texts).filter(function (n) { return /\.bpmn$/.test(n); }).sort();
  var activeFile = null;      // the file shown in the editor
  var loadedBpmn = null;      // the BPMN file currently imported in the modeler
  var busy = false;
  var marked = [];            // element ids marked as problems
  var needsFit = false;       // imported while hidden: fit when shown

  var modeler = new window.BpmnJS({
    container: $('bpmn-editor'),
    textRenderer: { defaultStyle: { fontFamily: D.FONT, fontSize: 12 } }
  });
  window.bangbanModeler = modeler;
  D.wireTools($('diagram-bar'), modeler, function () { return []; });

  function modelerDirty() {
    return loadedBpmn !== null && modeler.get('commandStack').canUndo();
  }

  function isDirty(name) {
    if (name === loadedBpmn && modelerDirty()) { return true; }
    return texts[name] !== original[name];
  }

  // ---- the file list -----------------------------------------------------------------------------------------
  function fileTitle(name) {
    if (/\.bpmn$/.test(name)) { return '流程图'; }
    if (name === 'catalogue.json') { return '事项目录'; }
    if (name === 'bangban.json') { return '流程清单'; }
    if (name === 'notifications.json') { return '通知模板'; }
    if (/^documents\//.test(name)) { return '单据模板'; }
    try {
      return JSON.parse(texts[name]).title || '';
    } catch (e) {
      return '（JSON 有误）';
    }
  }

  function renderFileList() {
    var list = $('file-list');
    list.textContent = '';
    var names = Object.keys(texts).sort();
    var groups = [
      ['流程图', names.filter(function (n) { return /\.bpmn$/.test(n); })],
      ['表单', names.filter(function (n) { return /^forms\//.test(n); })],
      ['单据模板', names.filter(function (n) { return /^documents\//.test(n); })],
      ['事项目录、流程清单与通知模板', names.filter(function (n) {
        return !/\.bpmn$/.test(n) && !/^forms\//.test(n) && !/^documents\//.test(n);
      })]
    ];
    groups.forEach(function (g) {
      if (!g[1].length) { return; }
      list.appendChild(el('li', { className: 'group', text: g[0] }));
      g[1].forEach(function (name) {
        var title = fileTitle(name);
        var button = el('button', { type: 'button', 'data-file': name, title: name, onclick: function () { openFile(name); } }, [
          name.replace(/^(forms|documents)\//, ''),
          isDirty(name) ? el('span', { className: 'dirty', text: ' ●', title: '已修改' }) : null,
          title ? el('small', { text: title }) : null]);
        if (name === activeFile) { button.setAttribute('aria-current', 'true'); }
        list.appendChild(el('li', {}, [button]));
      });
    });
  }

  // ---- opening files -----------------------------------------------------------------------------------------
  /** Put the modeler's current diagram into texts[loadedBpmn] (only when it was changed). */
  function exportModeler() {
    if (!modelerDirty()) { return Promise.resolve(); }
    var name = loadedBpmn;
    return modeler.saveXML({ format: false }).then(function (out) { texts[name] = out.xml; });
  }

  /** SpiffWorkflow reads loopDataInputRef / loopDataOutputRef of a multi-instance activity as variable names
      (``items``), while BPMN makes them references to data elements: bpmn-js drops a reference it cannot resolve,
      and the task would lose its collection on export. Put each back as a stand-in element with that id, which
      saveXML writes out as the same text. Returns the remaining warnings. */
  function keepVariableRefs(warnings) {
    var moddle = modeler.get('moddle');
    return (warnings || []).filter(function (w) {
      if (/^bpmn:loopData(Input|Output)Ref$/.test(w.property || '') && w.element && typeof w.value === 'string') {
        w.element.set(w.property.replace(/^bpmn:/, ''), moddle.create('bpmn:Property', { id: w.value }));
        return false;
      }
      return true;
    });
  }

  /** Lanes of nodes inside subprocesses. SpiffWorkflow (and so the engine: a lane is a role) takes a node's lane
      from any lane's flowNodeRef, also for nodes inside an expanded subprocess drawn across the pool's lanes. bpmn-js
      only keeps lane references for a pool's direct children: it drops them from nested nodes whenever these are
      created, moved or resized. After each of its lane updates, give every nested node it touched the pool lanes its
      centre lies in (one more 'lane.updateRefs' in the same undo step). Subprocesses and boundary events keep the
      lanes they had: bpmn-js would put a subprocess drawn across all lanes into the lane of its centre. */
  function keepNestedLanes() {
    var commandStack = modeler.get('commandStack');
    function poolOf(shape) {
      var p = shape.parent;
      while (p && p.type !== 'bpmn:Participant' && p.parent) { p = p.parent; }
      return p;
    }
    function lanesIn(shape, out) {
      (shape.children || []).forEach(function (c) {
        if (c.type === 'bpmn:Lane') { out.push(c); lanesIn(c, out); }
      });
      return out;
    }
    function withDescendants(shapes) {
      var out = [];
      (function walk(list) {
        list.forEach(function (s) {
          if (out.indexOf(s) < 0) { out.push(s); }
          if (s.type === 'bpmn:SubProcess') { walk((s.children || []).filter(function (c) { return !c.waypoints; })); }
        });
      }(shapes));
      return out;
    }
    function keepsLanes(bo) {
      return bo.$instanceOf('bpmn:SubProcess') || bo.$instanceOf('bpmn:BoundaryEvent');
    }
    modeler.on('commandStack.lane.updateRefs.postExecute', function (event) {
      var context = event.context;
      if (context.bangbanNested || !context.flowNodeShapes) { return; }
      var updates = [];
      (context.updates || []).forEach(function (u) {
        if (!keepsLanes(u.flowNode)) { return; }
        var add = u.remove.filter(function (l) { return u.add.indexOf(l) < 0; });
        var remove = u.add.filter(function (l) { return u.remove.indexOf(l) < 0; });
        if (add.length || remove.length) { updates.push({ flowNode: u.flowNode, add: add, remove: remove }); }
      });
      withDescendants(context.flowNodeShapes).forEach(function (shape) {
        var bo = shape.businessObject;
        if (!shape.parent || shape.labelTarget || !bo || !bo.$instanceOf || !bo.$instanceOf('bpmn:FlowNode')) { return; }
        if (keepsLanes(bo)) { return; }
        var pool = poolOf(shape);
        if (!pool || shape.parent === pool || shape.parent.type === 'bpmn:Lane') { return; }   // bpmn-js handles these
        var mid = { x: shape.x + shape.width / 2, y: shape.y + shape.height / 2 };
        var want = lanesIn(pool, []).filter(function (l) {
          return mid.x > l.x && mid.x < l.x + l.width && mid.y > l.y && mid.y < l.y + l.height;
        }).map(function (l) { return l.businessObject; });
        var have = (bo.get('lanes') || []).slice();
        var add = want.filter(function (l) { return have.indexOf(l) < 0; });
        var remove = have.filter(function (l) { return want.indexOf(l) < 0; });
        if (add.length || remove.length) { updates.push({ flowNode: bo, add: add, remove: remove }); }
      });
      if (updates.length) {
        commandStack.execute('lane.updateRefs', { flowNodeShapes: [], laneShapes: [], updates: updates, bangbanNested: true });
      }
    });
  }
  keepNestedLanes();

  function importBpmn(name) {
    clearProblemMarks();
    return modeler.importXML(texts[name]).then(function (res) {
      loadedBpmn = name;
      var warnings = keepVariableRefs(res.warnings);
      if ($('bpmn-editor').hidden) { needsFit = true; } else { D.fit(modeler); }
      if (warnings.length) {
        showMessage('流程图导入时有 ' + warnings.length + ' 条警告：' +
          warnings.slice(0, 3).map(function (w) { return w.message; }).join('；'), 'error');
      }
    });
  }

  function openFile(name, line) {
    var isBpmn = /\.bpmn$/.test(name);
    var step = Promise.resolve();
    if (isBpmn && loadedBpmn !== name) {
      step = exportModeler().then(function () { return importBpmn(name); });
    }
    return step.then(function () {
      activeFile = name;
      $('editor-title').textContent = name;
      $('bpmn-editor').hidden = !isBpmn;
      if (isBpmn) {
        modeler.get('canvas').resized();
        if (needsFit) { needsFit = false; D.fit(modeler); }
      }
      Array.prototype.forEach.call($('diagram-bar').querySelectorAll('button'), function (b) { b.hidden = !isBpmn; });
      var area = $('json-editor');
      area.hidden = isBpmn;
      if (!isBpmn) {
        area.value = texts[name];
        area.setAttribute('data-file', name);
        if (line) { selectLine(area, line); }
        renderProps(null);
      }
      renderFileList();
    }).catch(function (err) {
      showMessage('无法打开 ' + name + '：' + (err && err.message ? err.message : err), 'error');
    });
  }

  function selectLine(area, line) {
    var lines = area.value.split('\n');
    var start = 0;
    for (var i = 0; i < Math.min(line - 1, lines.length); i++) { start += lines[i].length + 1; }
    var end = start + (lines[line - 1] || '').length;
    area.focus();
    area.setSelectionRange(start, end);
    area.scrollTop = Math.max(0, (line - 5) * 19);
  }

  $('json-editor').addEventListener('input', function () {
    var name = this.getAttribute('data-file');
    var before = isDirty(name) + fileTitle(name);
    texts[name] = this.value;
    if (before !== isDirty(name) + fileTitle(name)) { renderFileList(); }
  });

  $('new-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var input = $('new-form-name');
    var name = input.value.trim();
    if (!/^forms\/[A-Za-z0-9_]+\.json$/.test(name)) {
      showMessage('表单文件名应为 forms/英文字母数字下划线.json', 'error');
      return;
    }
    if (texts[name] !== undefined) {
      showMessage('已有文件 ' + name, 'error');
      return;
    }
    texts[name] = NEW_FORM;
    input.value = '';
    renderFormDatalist();
    openFile(name);
  });

  modeler.on('commandStack.changed', function () {
    renderFileList();
    var selected = modeler.get('selection').get();
    renderProps(selected.length === 1 ? selected[0] : null);
  });
  modeler.on('selection.changed', function (e) {
    renderProps(e.newSelection.length === 1 ? e.newSelection[0] : null);
  });
  $('undo-button').addEventListener('click', function () { modeler.get('commandStack').undo(); });
  $('redo-button').addEventListener('click', function () { modeler.get('commandStack').redo(); });

  // ---- the properties panel ----------------------------------------------------------------------------------
  function spiffProperties(bo) {
    var ext = bo.extensionElements;
    var block = ext && (ext.values || []).filter(function (v) { return v.$type === 'spiffworkflow:properties'; })[0];
    return ((block && block.$children) || []).filter(function (c) { return c.$type === 'spiffworkflow:property'; })
      .map(function (c) { return { name: c.name || '', value: c.value || '' }; });
  }

  /** Replace the element's spiffworkflow:properties (one undoable command); other extension elements stay. */
  function setSpiffProperties(element, rows) {
    var moddle = modeler.get('moddle');
    var bo = element.businessObject;
    var others = ((bo.extensionElements && bo.extensionElements.values) || []).filter(function (v) {
      return v.$type !== 'spiffworkflow:properties';
    });
    rows = rows.filter(function (r) { return r.name; });
    var values = others.slice();
    if (rows.length) {
      var block = moddle.createAny('spiffworkflow:properties', SPIFF_NS, {});
      block.$children = rows.map(function (r) {
        var p = moddle.createAny('spiffworkflow:property', SPIFF_NS, { name: r.name, value: r.value });
        p.$parent = block;
        return p;
      });
      values.push(block);
    }
    var ext = values.length ? moddle.create('bpmn:ExtensionElements', { values: values }) : undefined;
    if (ext) {
      ext.$parent = bo;
      values.forEach(function (v) { v.$parent = ext; });
    }
    modeler.get('modeling').updateProperties(element, { extensionElements: ext });
  }

  function laneNames(bo) {
    return (bo.lanes || []).map(function (l) { return l.name || l.id; }).join('、');
  }

  function renderProps(element) {
    var panel = $('props');
    panel.textContent = '';
    if (!element || element.type === 'label' || !activeFile || !/\.bpmn$/.test(activeFile)) {
      panel.appendChild(el('p', { className: 'muted', text: '选中流程图中的一个元素以查看和修改其属性。' }));
      return;
    }
    var bo = element.businessObject;
    var modeling = modeler.get('modeling');
    panel.setAttribute('data-element', element.id);
    panel.appendChild(el('h3', { text: TYPE_NAMES[element.type] || element.type.replace(/^bpmn:/, '') }));
    panel.appendChild(el('dl', { className: 'facts' }, [
      el('dt', { text: '编号' }), el('dd', {}, [el('code', { text: element.id })]),
      el('dt', { text: '泳道' }), el('dd', { text: laneNames(bo) || '—' })
    ]));

    if (element.type !== 'bpmn:Process') {
      var name = el('input', { id: 'prop-name', value: bo.name || '' });
      name.addEventListener('change', function () { modeling.updateLabel(element, name.value); });
      panel.appendChild(el('label', {}, ['名称', name]));
    }

    if (element.type === 'bpmn:ScriptTask') {
      var script = el('textarea', { id: 'prop-script', className: 'code', spellcheck: 'false', rows: '8' });
      script.style.height = '160px';
      script.value = bo.script || '';
      script.addEventListener('change', function () { modeling.updateProperties(element, { script: script.value }); });
      panel.appendChild(el('label', {}, ['脚本（Python，缩进有意义）', script]));
    }

    if (element.type === 'bpmn:SequenceFlow') {
      var cond = el('input', { id: 'prop-condition', value: (bo.conditionExpression && bo.conditionExpression.body) || '' });
      cond.addEventListener('change', function () {
        var body = cond.value.trim();
        var expr = body ? modeler.get('moddle').create('bpmn:FormalExpression', { body: body }) : undefined;
        modeling.updateProperties(element, { conditionExpression: expr });
      });
      panel.appendChild(el('label', {}, ['条件（Python 表达式）', cond]));
    }

    if (/^bpmn:(UserTask|StartEvent|EndEvent|ManualTask|Task|ScriptTask|ServiceTask)$/.test(element.type)) {
      var rows = spiffProperties(bo);
      var table = el('table', { className: 'kv', id: 'prop-table' });
      var commit = function () {
        var current = Array.prototype.map.call(table.querySelectorAll('tr[data-row]'), function (tr) {
          var inputs = tr.querySelectorAll('input');
          return { name: inputs[0].value.trim(), value: inputs[1].value };
        });
        setSpiffProperties(element, current);
      };
      rows.forEach(function (r, i) {
        var n = el('input', { value: r.name, list: 'spiff-property-names', 'aria-label': '属性名 ' + (i + 1) });
        var v = el('input', { value: r.value, list: r.name === 'formJsonSchemaFilename' ? 'form-files' : '',
                              'aria-label': '属性值 ' + (r.name || i + 1) });
        n.addEventListener('change', commit);
        v.addEventListener('change', commit);
        var remove = el('button', { type: 'button', className: 'small secondary', title: '删除此属性', text: '×',
                                    onclick: function () { table.removeChild(tr); commit(); } });
        var tr = el('tr', { 'data-row': String(i), 'data-name': r.name },
                    [el('td', {}, [n]), el('td', {}, [v]), el('td', {}, [remove])]);
        table.appendChild(tr);
      });
      panel.appendChild(el('h3', { text: '流程属性（spiffworkflow:properties）' }));
      panel.appendChild(table);
      var newName = el('input', { id: 'prop-new-name', list: 'spiff-property-names', placeholder: '属性名', 'aria-label': '新属性名' });
      var newValue = el('input', { id: 'prop-new-value', placeholder: '值', list: 'form-files', 'aria-label': '新属性值' });
      var add = el('button', { type: 'button', className: 'small', id: 'prop-add', text: '添加属性', onclick: function () {
        if (!newName.value.trim()) { newName.focus(); return; }
        setSpiffProperties(element, rows.concat([{ name: newName.value.trim(), value: newValue.value }]));
      } });
      panel.appendChild(el('table', { className: 'kv' }, [el('tr', {}, [el('td', {}, [newName]), el('td', {}, [newValue]), el('td', {}, [add])])]));
      panel.appendChild(el('p', { className: 'muted', text: '用户任务需要 formJsonSchemaFilename（表单文件）；stage、assignee 等见 README“修改流程”。' }));
    }
  }

  function renderFormDatalist() {
    var old = $('form-files');
    if (old) { old.parentNode.removeChild(old); }
    var list = el('datalist', { id: 'form-files' });
    Object.keys(texts).filter(function (n) { return /^forms\//.test(n); }).sort().forEach(function (n) {
      list.appendChild(el('option', { value: n.replace(/^forms\//, '') }));
    });
    document.body.appendChild(list);
  }

  // ---- problems ----------------------------------------------------------------------------------------------
  function clearProblemMarks() {
    if (loadedBpmn === null) { marked = []; return; }
    var canvas = modeler.get('canvas');
    marked.forEach(function (id) { try { canvas.removeMarker(id, 'bb-problem'); } catch (e) { /* element gone */ } });
    modeler.get('overlays').remove({ type: 'bb-problem' });
    marked = [];
  }

  function problemBelongsToDiagram(p) {
    return p.element && (!p.file || p.file === loadedBpmn) && modeler.get('elementRegistry').get(p.element);
  }

  function showProblems(headline, problems) {
    clearProblemMarks();
    var canvas = modeler.get('canvas');
    var overlays = modeler.get('overlays');
    var registry = modeler.get('elementRegistry');
    var list = el('ul', { className: 'problems', id: 'problems' });
    var notes = {};
    problems.forEach(function (p) {
      var where = [];
      // a BPMN saved by the modeler is one long line: there the element says where, not the line
      var showLine = p.line && !(p.element && /\.bpmn$/.test(p.file || ''));
      if (p.file) { where.push(p.file + (showLine ? ' 第 ' + p.line + ' 行' : '')); }
      if (p.element) { where.push('元素 ' + p.element); }
      var item = el('li', { 'data-element': p.element || '', 'data-file': p.file || '' },
        [el('span', { className: 'message', text: p.message }), where.length ? el('span', { className: 'where', text: '（' + where.join('，') + '）' }) : null,
         p.detail ? el('div', { className: 'detail', text: '原文：' + p.detail }) : null]);
      if (problemBelongsToDiagram(p)) {
        item.appendChild(el('button', { type: 'button', className: 'small secondary', text: '定位', onclick: function () {
          openFile(loadedBpmn).then(function () {
            var element = registry.get(p.element);
            if (element) { D.focus(modeler, [p.element], 0.9); modeler.get('selection').select(element); }
          });
        } }));
        (notes[p.element] = notes[p.element] || []).push(p.message);
      } else if (p.file && texts[p.file] !== undefined && !/\.bpmn$/.test(p.file)) {
        item.appendChild(el('button', { type: 'button', className: 'small secondary', text: '打开',
                                        onclick: function () { openFile(p.file, p.line); } }));
      }
      list.appendChild(item);
    });
    Object.keys(notes).forEach(function (id) {
      canvas.addMarker(id, 'bb-problem');
      marked.push(id);
      var element = registry.get(id);
      var note = el('div', { className: 'bb-problem-note', 'data-element': id, text: notes[id].join('；') });
      overlays.add(id, 'bb-problem', element.waypoints
        ? { position: { top: 0, left: 0 }, html: note }
        : { position: { top: element.height + 4, left: 0 }, html: note });
    });
    showMessage(headline, 'error', [list]);
  }

  // ---- 校验 and 发布 ---------------------------------------------------------------------------------------------
  /** The files to send: every file that differs from the base version, and always the BPMN shown (never empty). */
  function collectFiles() {
    return exportModeler().then(function () {
      var files = {};
      Object.keys(texts).forEach(function (name) {
        if (texts[name] !== original[name]) { files[name] = texts[name]; }
      });
      if (!Object.keys(files).length && bpmnNames.length) { files[bpmnNames[0]] = texts[bpmnNames[0]]; }
      return files;
    });
  }

  function setBusy(on) {
    busy = on;
    $('validate-button').disabled = on;
    $('publish-button').disabled = on;
  }

  function failed(err) {
    showMessage('请求失败：' + (err && err.message ? err.message : err), 'error');
  }

  function validate() {
    if (busy) { return Promise.resolve(); }
    setBusy(true);
    return collectFiles().then(function (files) {
      return D.requestJSON('/api/processes/validate', { method: 'POST', body: { files: files } });
    }).then(function (res) {
      if (!res.ok) {
        showMessage(res.body.message || ('HTTP ' + res.status), 'error');
      } else if (res.body.ok) {
        clearProblemMarks();
        showMessage('校验通过：没有发现问题。', 'ok');
      } else {
        showProblems('校验发现 ' + res.body.problems.length + ' 处问题：', res.body.problems);
      }
      result.setAttribute('data-validated', res.ok && res.body.ok ? 'ok' : 'problems');
    }).catch(failed).then(function () { setBusy(false); });
  }

  function publish() {
    if (busy) { return Promise.resolve(); }
    var comment = $('publish-comment').value.trim();
    if (!comment) {
      showMessage('请填写发布说明。', 'error');
      $('publish-comment').focus();
      return Promise.resolve();
    }
    setBusy(true);
    var files;
    return collectFiles().then(function (collected) {
      files = collected;
      return D.requestJSON('/api/processes/versions');
    }).then(function (res) {
      if (!res.ok) { throw new Error(res.body.message || ('HTTP ' + res.status)); }
      var latest = res.body.versions.filter(function (v) { return v.latest; })[0];
      if (latest && latest.id !== base.id) {
        showMessage('流程已有更新的版本 #' + latest.id + '（' + latest.author + '：' + latest.comment + '）。' +
          '为免覆盖他人的修改，请刷新页面，在最新版本上重新修改后再发布。', 'error');
        return null;
      }
      return D.requestJSON('/api/processes/publish', { method: 'POST', body: { files: files, comment: comment } });
    }).then(function (res) {
      if (!res) { return; }
      if (res.status === 201) {
        published(res.body, comment);
      } else if (res.status === 422 && res.body.details && res.body.details.length) {
        showProblems((res.body.message || '未发布') + '：', res.body.details);
      } else {
        showMessage(res.body.message || ('发布失败（HTTP ' + res.status + '）'), 'error');
      }
    }).catch(failed).then(function () { setBusy(false); });
  }

  function published(version, comment) {
    clearProblemMarks();
    original = Object.assign({}, texts);
    base = { id: version.id, short: version.short };
    $('base-version').textContent = '基于版本 #' + version.id + '（' + version.short + '）';
    $('base-version').setAttribute('data-version', String(version.id));
    $('publish-comment').value = '';
    var link = el('a', { href: '/processes', id: 'versions-link', text: '查看全部版本' });
    var text = version.unchanged
      ? '内容与最新版本 #' + version.id + '（' + version.short + '）相同，没有产生新版本。'
      : '已发布新版本 #' + version.id + '（' + version.short + '）：' + comment + '。新办件将使用此版本，在办办件仍按原版本办理。';
    showMessage(text, 'ok', [' ', link]);
    // start again from what was published: a clean undo history, nothing marked as changed
    var reload = loadedBpmn;
    loadedBpmn = null;
    return (reload ? importBpmn(reload) : Promise.resolve()).then(function () {
      renderFileList();
      renderProps(null);
      result.setAttribute('data-published', String(version.id));
    });
  }

  $('validate-button').addEventListener('click', validate);
  $('publish-button').addEventListener('click', publish);
  window.addEventListener('beforeunload', function (event) {
    var dirty = Object.keys(texts).some(isDirty);
    if (dirty) { event.preventDefault(); event.returnValue = ''; }
  });

  window.bangbanModelerPage = { validate: validate, publish: publish, collectFiles: collectFiles, openFile: openFile };

  renderFormDatalist();
  var first = bpmnNames[0] || Object.keys(texts).sort()[0];
  openFile(first).then(function () { $('bpmn-editor').setAttribute('data-state', 'ready'); });
}());
