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
    '  "properties": {},\n  "required": [],\n  "additionalProperties": false\n}\n';

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

  // ---- bpmn-js in Chinese: bpmn-js-i18n's zh words (served from /vendor/), a few of ours on top ----------------
  var ZH = Object.assign({}, window.BangbanBpmnZh || {}, {
    'Activate lasso tool': '框选工具', 'Activate hand tool': '抓手工具（拖动画布）',
    'Activate create/remove space tool': '插入或删除空白', 'Activate global connect tool': '连线工具', 'Ad-hoc': '临时子流程',
    'more than {count} child lanes': '超过 {count} 条子泳道',
    'Add lane above': '在上方添加泳道', 'Add lane below': '在下方添加泳道', 'Divide into two lanes': '分为两个泳道',
    'Divide into three lanes': '分为三个泳道', 'Align elements': '对齐元素', 'Toggle non-interrupting': '切换为非中断',
    'Change element': '更改元素类型', 'Distribute elements horizontally': '水平均匀分布',
    'Distribute elements vertically': '垂直均匀分布', 'Expanded pool/participant': '展开的池/参与者',
    'Boundary event': '边界事件', 'Event based instantiating Gateway': '基于事件的实例化网关',
    'Parallel Event based instantiating Gateway': '基于事件的并行实例化网关', 'Ad-hoc sub-process': '临时子流程',
    'Search in diagram': '在流程图中查找', 'Open {element}': '打开{element}', 'Append task': '追加任务',
    'Delete': '删除', 'Connect using sequence/message flow or association': '连线（顺序流、消息流或关联）'
  });
  Object.keys(TYPE_NAMES).forEach(function (type) {        // the properties panel's header: 'User Task' …
    ZH[type.replace(/^bpmn:/, '').replace(/(\B[A-Z])/g, ' $1')] = TYPE_NAMES[type];
  });
  Object.assign(ZH, {
    'Select an element to edit its properties.': '选中流程图中的一个元素以查看和修改其属性。',
    'Multiple elements are selected. Select a single element to edit its properties.': '选中了多个元素：请只选一个以修改其属性。',
    'Toggle section': '展开或收起', 'Section contains data': '已填写', 'Section contains an error': '有错误'
  });
  function translate(template, replacements) {
    replacements = replacements || {};
    var text = ZH[template] || ZH[(template || '').trim()] || template;
    return text.replace(/{([^}]+)}/g, function (_, key) { return replacements[key] !== undefined ? replacements[key] : '{' + key + '}'; });
  }
  var translateModule = { translate: ['value', translate] };
  /** The px the palette takes on the left (one or two columns, by the canvas height): the diagram is fitted right of it. */
  function PALETTE_INSET() {
    var palette = $('bpmn-editor').querySelector('.djs-palette');
    return palette && palette.offsetWidth ? palette.offsetLeft + palette.offsetWidth : 70;
  }

  var modeler = new window.BpmnJS({
    container: $('bpmn-editor'),
    additionalModules: [translateModule].concat((window.BangbanPanel && window.BangbanPanel.modules) || []),
    propertiesPanel: {
      parent: '#properties-panel',
      layout: { groups: { general: { open: true }, 'bangban-settings': { open: true } } }
    },
    bangbanSettings: {
      settings: function (element) { return settingsFor(element); },
      read: function (element, name) { return readSetting(element, name); },
      write: function (element, name, value) { writeSetting(element, name, value); }
    },
    textRenderer: { defaultStyle: { fontFamily: D.FONT, fontSize: 12 } }
  });
  window.bangbanModeler = modeler;
  D.wireTools($('diagram-bar'), modeler, function () { return []; }, PALETTE_INSET);

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
    if (/^documents\//.test(name)) { return name.replace(/^documents\//, '').replace(/\.html$/, ''); }   // 单据种类
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
      ['其他', names.filter(function (n) { return !/\.bpmn$/.test(n) && !/^forms\//.test(n) && !/^documents\//.test(n); })]
    ];
    groups[1][1].sort(function (a, b) { return (fileTitle(a) || a).localeCompare(fileTitle(b) || b, 'zh-Hans-CN'); });
    groups.forEach(function (g) {
      if (!g[1].length) { return; }
      var row = el('ul', { className: 'files' });
      g[1].forEach(function (name) {
        var title = fileTitle(name);
        var button = el('button', { type: 'button', 'data-file': name, title: name, onclick: function () { openFile(name); } }, [
          title || name.replace(/^forms\//, ''),
          isDirty(name) ? el('span', { className: 'dirty', text: ' ●', title: '已修改' }) : null,
          el('small', { text: name.replace(/^forms\//, '') })]);
        if (name === activeFile) { button.setAttribute('aria-current', 'true'); }
        row.appendChild(el('li', {}, [button]));
      });
      list.appendChild(el('li', { className: 'group' }, [el('span', { className: 'group-name', text: g[0] }), row]));
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
    /** The pool lanes a nested shape's centre lies in. */
    function drawnIn(shape, pool) {
      var mid = { x: shape.x + shape.width / 2, y: shape.y + shape.height / 2 };
      return lanesIn(pool, []).filter(function (l) {
        return mid.x > l.x && mid.x < l.x + l.width && mid.y > l.y && mid.y < l.y + l.height;
      }).map(function (l) { return l.businessObject; });
    }
    function laneKey(lanes) { return lanes.map(function (l) { return l.id; }).sort().join(' '); }
    var seen = {};        // nested shape id -> the lanes it was drawn in before the current command
    function remember() {
      seen = {};
      modeler.get('elementRegistry').forEach(function (shape) {
        var pool = shape.waypoints || shape.labelTarget ? null : poolOf(shape);
        if (pool && shape.parent && shape.parent !== pool && shape.parent.type !== 'bpmn:Lane' && shape.type !== 'bpmn:Lane') {
          seen[shape.id] = laneKey(drawnIn(shape, pool));
        }
      });
    }
    modeler.on('import.done', remember);
    modeler.on('commandStack.changed', remember);
    modeler.on('commandStack.lane.updateRefs.postExecute', function (event) {
      var context = event.context;
      if (context.bangbanNested || !context.flowNodeShapes) { return; }
      var updates = [];
      function undoUpdateOf(flowNode) {        // what bpmn-js just did to this node's lanes, undone
        (context.updates || []).forEach(function (u) {
          if (u.flowNode !== flowNode) { return; }
          var add = u.remove.filter(function (l) { return u.add.indexOf(l) < 0; });
          var remove = u.add.filter(function (l) { return u.remove.indexOf(l) < 0; });
          if (add.length || remove.length) { updates.push({ flowNode: u.flowNode, add: add, remove: remove }); }
        });
      }
      (context.updates || []).forEach(function (u) { if (keepsLanes(u.flowNode)) { undoUpdateOf(u.flowNode); } });
      withDescendants(context.flowNodeShapes).forEach(function (shape) {
        var bo = shape.businessObject;
        if (!shape.parent || shape.labelTarget || !bo || !bo.$instanceOf || !bo.$instanceOf('bpmn:FlowNode')) { return; }
        if (keepsLanes(bo)) { return; }
        var pool = poolOf(shape);
        if (!pool || shape.parent === pool || shape.parent.type === 'bpmn:Lane') { return; }   // bpmn-js handles these
        var want = drawnIn(shape, pool);
        // moved within the same lanes (the space tool, a horizontal drag): its lanes stay what the file says, also
        // where it was drawn outside them
        if (seen[shape.id] !== undefined && seen[shape.id] === laneKey(want)) { undoUpdateOf(bo); return; }
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
      if ($('bpmn-editor').hidden) { needsFit = true; } else { D.fit(modeler, PALETTE_INSET); }
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
      $('editor-title').textContent = fileTitle(name) || name;
      $('bpmn-editor').hidden = !isBpmn;
      if (isBpmn) {
        modeler.get('canvas').resized();
        if (needsFit) { needsFit = false; D.fit(modeler, PALETTE_INSET); }
      }
      $('diagram-tools').hidden = !isBpmn;
      $('form-tabs').hidden = !isForm(name);
      if (!isBpmn) {
        renderProps(null);
        if (isForm(name) && formView === 'design' && !line && showFormDesigner(name)) {
          $('json-editor').hidden = true;
        } else {
          showJson(name, line);
        }
      } else {
        $('json-editor').hidden = true;
        $('form-editor').hidden = true;
      }
      renderFileList();
    }).catch(function (err) {
      var why = err && err.message && /[\u4e00-\u9fff]/.test(err.message) ? err.message : '文件不是可以导入的 BPMN 流程图（XML 有误），请校验查看问题所在';
      showMessage('无法打开“' + (fileTitle(name) || name) + '”：' + why, 'error');
    });
  }

  // ---- forms: the designer, or the JSON text for experts -----------------------------------------------------
  var formView = 'design';

  function isForm(name) { return /^forms\/.+\.json$/.test(name || ''); }

  function setTabs(view) {
    $('form-design-tab').setAttribute('aria-selected', String(view === 'design'));
    $('form-json-tab').setAttribute('aria-selected', String(view === 'json'));
    $('form-design-tab').className = 'small' + (view === 'design' ? '' : ' secondary');
    $('form-json-tab').className = 'small' + (view === 'json' ? '' : ' secondary');
  }

  function showJson(name, line) {
    var area = $('json-editor');
    $('form-editor').hidden = true;
    area.hidden = false;
    area.value = texts[name];
    area.setAttribute('data-file', name);
    if (isForm(name)) { setTabs('json'); }
    if (line) { selectLine(area, line); }
  }

  /** The designer for a form; false (and a Chinese message) when its text is no JSON object. */
  function showFormDesigner(name) {
    var box = $('form-editor');
    var ok = window.BangbanFormEditor && window.BangbanFormEditor.open(box, $('field-panel'), texts[name], function (text) {
      texts[name] = text;
      $('editor-title').textContent = fileTitle(name) || name;
      renderFileList();
    });
    if (!ok) {
      showMessage('表单“' + name.replace(/^forms\//, '') + '”的 JSON 有误（' + jsonProblem(texts[name]) +
                  '），请在“JSON 文本”中改正后再用表单设计。', 'error');
      return false;
    }
    box.hidden = false;
    box.setAttribute('data-file', name);
    setTabs('design');
    return true;
  }

  /** Where a text stops being JSON, in Chinese (the browser's own message is English). */
  function jsonProblem(text) {
    try { JSON.parse(text); return '不是 JSON 对象'; } catch (e) {
      var msg = String(e && e.message || '');
      var m = /line (\d+) column (\d+)/.exec(msg);
      if (m) { return '第 ' + m[1] + ' 行第 ' + m[2] + ' 列附近'; }
      m = /position (\d+)/.exec(msg);
      if (m) {
        var upTo = text.slice(0, parseInt(m[1], 10)).split('\n');
        return '第 ' + upTo.length + ' 行第 ' + (upTo[upTo.length - 1].length + 1) + ' 列附近';
      }
      return /end of (JSON|data)/i.test(msg) ? '内容不完整' : '格式有误';
    }
  }

  $('form-design-tab').addEventListener('click', function () {
    if (!isForm(activeFile)) { return; }
    if (showFormDesigner(activeFile)) { formView = 'design'; $('json-editor').hidden = true; }
  });
  $('form-json-tab').addEventListener('click', function () {
    if (!isForm(activeFile)) { return; }
    formView = 'json';
    renderProps(null);
    showJson(activeFile);
  });

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
    var title = $('new-form-title').value.trim();
    var name = input.value.trim();
    if (!name) {
      for (var i = 1; texts['forms/form_' + i + '.json'] !== undefined; i++) { /* the first free number */ }
      name = 'forms/form_' + i + '.json';
    }
    if (!/^forms\/[A-Za-z0-9_]+\.json$/.test(name)) {
      showMessage('表单文件名应为 forms/ 加英文字母、数字或下划线，以 .json 结尾，例如 forms/site_check.json；也可不填，自动命名。', 'error');
      return;
    }
    if (texts[name] !== undefined) {
      showMessage('已有同名的表单文件 ' + name.replace(/^forms\//, '') + '，请换一个文件名。', 'error');
      return;
    }
    texts[name] = title ? NEW_FORM.replace('"新表单"', JSON.stringify(title)) : NEW_FORM;
    input.value = '';
    $('new-form-title').value = '';
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

  /** What the properties panel does not draw: the element's kind, id and lanes, and its properties by name. */
  function renderProps(element) {
    var panel = $('prop-extra');
    panel.textContent = '';
    var showDiagram = !!activeFile && /\.bpmn$/.test(activeFile);
    $('properties-panel').hidden = !showDiagram;
    $('field-panel').hidden = showDiagram;
    if (!element || element.type === 'label' || !showDiagram) {
      $('props').removeAttribute('data-element');
      return;
    }
    var bo = element.businessObject;
    $('props').setAttribute('data-element', element.id);
    panel.appendChild(el('dl', { className: 'facts' }, [
      el('dt', { text: '类型' }), el('dd', { text: TYPE_NAMES[element.type] || element.type.replace(/^bpmn:/, '') }),
      el('dt', { text: '编号' }), el('dd', {}, [el('code', { text: element.id })]),
      el('dt', { text: '泳道' }), el('dd', { text: laneNames(bo) || '—' })
    ]));
    if (element.type === 'bpmn:UserTask') {
      panel.appendChild(el('p', { className: 'muted', text: '办理的角色由任务所在的泳道决定：把任务拖到相应泳道即可。' }));
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
        var tr = el('tr', { 'data-row': String(i), 'data-name': r.name, title: propertyLabel(r.name) },
                    [el('td', {}, [n]), el('td', {}, [v]), el('td', {}, [remove])]);
        table.appendChild(tr);
      });
      var newName = el('input', { id: 'prop-new-name', list: 'spiff-property-names', placeholder: '属性名', 'aria-label': '新属性名' });
      var newValue = el('input', { id: 'prop-new-value', placeholder: '值', list: 'form-files', 'aria-label': '新属性值' });
      var add = el('button', { type: 'button', className: 'small', id: 'prop-add', text: '添加属性', onclick: function () {
        if (!newName.value.trim()) { newName.focus(); return; }
        setSpiffProperties(element, rows.concat([{ name: newName.value.trim(), value: newValue.value }]));
      } });
      var expert = el('details', { className: 'expert', id: 'prop-expert' }, [
        el('summary', { text: '全部属性（按属性名，供熟悉流程属性的人员）' }), table,
        el('table', { className: 'kv' }, [el('tr', {}, [el('td', {}, [newName]), el('td', {}, [newValue]), el('td', {}, [add])])])]);
      if (expertOpen) { expert.open = true; }
      expert.addEventListener('toggle', function () { expertOpen = expert.open; });
      panel.appendChild(expert);
    }
  }

  // ---- the task's settings as labelled fields ---------------------------------------------------------------------
  var expertOpen = false;
  /* [property, label, kind, hint]: kind form / stage / document / outcome pick from the process files, text is typed */
  var SETTINGS = [
    ['formJsonSchemaFilename', '表单', 'form', '办理人填写的表单'],
    ['stage', '阶段', 'stage', '办件页五段进度中的阶段'],
    ['assignee', '指定办理人', 'text', '办件变量，如 lead_officer（牵头代办人）；不填则泳道角色内任一人可办'],
    ['department', '办理部门', 'text', '表达式，如 item[\'department\']；不填则不限部门'],
    ['title', '标题', 'text', '同一任务有多个实例时区分它们，如 item[\'name\']'],
    ['record_actor', '把办理人记为办件变量', 'text', '如 case_agent；此后的任务可以“指定办理人”引用它'],
    ['show', '在表单旁显示', 'text', '办件变量，多个用逗号分隔，如 item,correction_request'],
    ['confirm', '提交前确认', 'textarea', '结束办件或不可挽回的一步：写明后果的中文提示，办理人确认后才办理'],
    ['confirm_when', '需要确认的条件', 'text', '表达式，如 review_decision == \'不予受理\'；不填则每次都确认'],
    ['document', '办理完成时出具单据', 'document', '编号单据，编号规则见流程清单'],
    ['document_when', '出具单据的条件', 'text', '表达式，如 review_decision == \'不予受理\'；不填则总是出具'],
    ['form_defaults', '表单预填', 'text', '表达式：表单各字段的初始值'],
    ['notify', '通知对象', 'text', '账号、dept:部门、role:角色 或 unit:'],
    ['notify_text', '通知内容', 'textarea', ''],
    ['outcome', '办件结果', 'outcome', '到达此处时办件的状态']
  ];
  var LABELS = {};
  SETTINGS.forEach(function (s) { LABELS[s[0]] = s[1]; });
  Object.assign(LABELS, { form_key: '表单键', clock: '计时', clock_limit: '时限', clock_title: '计时名称', clock_stop: '停止计时',
    clock_stop_all: '停止全部计时', clock_pause: '暂停计时', clock_pause_reason: '暂停原因', clock_department: '计时部门',
    clock_extend: '延长时限', clock_extend_days: '延长天数', clock_extend_reason: '延长原因', warning_level: '预警级别',
    warns_clock: '预警的计时', ends_tasks: '结束待办' });
  var OUTCOMES = { completed: '办结', refused: '不予受理', terminated: '终止', withdrawn: '已撤回' };

  function propertyLabel(name) { return LABELS[name] || name; }

  function manifest() {
    try { return JSON.parse(texts['bangban.json'] || '{}') || {}; } catch (e) { return {}; }
  }

  function choicesFor(kind, current) {
    var out = [['', '（不设置）']];
    if (kind === 'form') {
      Object.keys(texts).filter(isForm).sort().forEach(function (n) {
        var file = n.replace(/^forms\//, '');
        out.push([file, (fileTitle(n) || file) + '（' + file + '）']);
      });
    } else if (kind === 'stage') {
      (manifest().stages || []).forEach(function (st) { out.push([st, st]); });
    } else if (kind === 'document') {
      Object.keys(manifest().numbers || {}).filter(function (k) { return k !== 'case'; }).forEach(function (k) { out.push([k, k]); });
    } else if (kind === 'outcome') {
      Object.keys(OUTCOMES).forEach(function (k) { out.push([k, OUTCOMES[k]]); });
    }
    if (current && !out.some(function (o) { return o[0] === current; })) { out.push([current, current + '（不在可选范围内）']); }
    return out;
  }

  /** The settings the properties panel shows for an element: where they apply, or where the element has them. */
  function settingsFor(element) {
    if (!/^bpmn:(UserTask|StartEvent|EndEvent|ManualTask|Task|ScriptTask|ServiceTask|IntermediateThrowEvent|IntermediateCatchEvent|BoundaryEvent)$/.test(element.type)) {
      return [];
    }
    var userTask = element.type === 'bpmn:UserTask';
    var values = {};
    spiffProperties(element.businessObject).forEach(function (r) { if (!(r.name in values)) { values[r.name] = r.value; } });
    var taskOnly = ['formJsonSchemaFilename', 'assignee', 'department', 'title', 'record_actor', 'show', 'confirm',
                    'confirm_when', 'document', 'document_when', 'form_defaults'];
    return SETTINGS.filter(function (setting) {
      var name = setting[0];
      if (name in values) { return true; }
      return userTask ? ['outcome', 'notify', 'notify_text'].indexOf(name) < 0 : taskOnly.indexOf(name) < 0 && name === 'outcome';
    }).map(function (setting) {
      var typed = setting[2] === 'text' || setting[2] === 'textarea';
      return { name: setting[0], label: setting[1], kind: typed ? setting[2] : 'select', description: setting[3],
               options: typed ? [] : choicesFor(setting[2], values[setting[0]] || '') };
    });
  }

  function readSetting(element, name) {
    var row = spiffProperties(element.businessObject).filter(function (r) { return r.name === name; })[0];
    return row ? row.value : '';
  }

  /** Set one property (the first of that name; empty: remove it), keeping the others in their order. */
  function writeSetting(element, name, value) {
    value = (value || '').trim();
    var rows = spiffProperties(element.businessObject);
    var seen = false;
    var next = [];
    rows.forEach(function (r) {
      if (r.name !== name) { next.push(r); return; }
      if (!seen && value) { next.push({ name: name, value: value }); }
      seen = true;
    });
    if (!seen && value) { next.push({ name: name, value: value }); }
    setSpiffProperties(element, next);
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
    // fetch's own errors are English (Failed to fetch): say what happened instead; ours (requestJSON) are Chinese
    var text = err && err.message && /[\u4e00-\u9fff]/.test(err.message) ? err.message : '无法连接服务器，请检查网络后重试';
    showMessage('请求失败：' + text, 'error');
  }

  function validate() {
    if (busy) { return Promise.resolve(); }
    setBusy(true);
    return collectFiles().then(function (files) {
      return D.requestJSON('/api/processes/validate', { method: 'POST', body: { files: files } });
    }).then(function (res) {
      if (!res.ok) {
        showMessage(res.body.message || ('校验未完成（服务器答复代码 ' + res.status + '）'), 'error');
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
      if (!res.ok) { throw new Error(res.body.message || ('无法取得版本列表（服务器答复代码 ' + res.status + '）')); }
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
        showMessage(res.body.message || ('发布失败（服务器答复代码 ' + res.status + '）'), 'error');
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
