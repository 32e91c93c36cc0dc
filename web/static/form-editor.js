/* The form designer of the modeler: a form file of processes/forms (JSON Schema 2020-12) edited as a list of fields
   — add, remove, reorder, and per field its title, type, required, options and conditions ("required when X = Y",
   written as the allOf/if/then the forms already use) — without touching JSON. Whatever it does not understand
   (x-sections, x-document, other rules) it keeps as it is; the raw JSON stays available beside it.

   BangbanFormEditor.open(container, panel, text, onChange): shows the designer for `text` in `container`, the
   selected field's settings in `panel`; calls onChange(newText) after each change. Returns false (and shows
   nothing) when `text` is not a JSON object. Pure schema operations are exposed as BangbanFormEditor.ops. */
(function () {
  'use strict';

  var TYPES = [
    ['text', '文本'], ['textarea', '多行文本'], ['number', '数字'], ['integer', '整数'], ['date', '日期'],
    ['boolean', '是否（勾选）'], ['single', '单选'], ['multi', '多选']
  ];
  var TYPE_NAMES = {};
  TYPES.forEach(function (t) { TYPE_NAMES[t[0]] = t[1]; });
  var SOURCES = { catalogue_items: '服务事项目录' };
  // keys a type decides; everything else on a field (x-case-var, readOnly, pattern …) is kept when the type changes
  var TYPE_KEYS = ['type', 'enum', 'items', 'format', 'x-widget', 'maxLength', 'minLength', 'minimum', 'maximum',
                   'minItems', 'maxItems', 'uniqueItems', 'const', 'x-date', 'pattern', 'x-options'];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) { return; }
      if (k === 'text') { node.textContent = v; }
      else if (k === 'className') { node.className = v; }
      else if (k.slice(0, 2) === 'on') { node.addEventListener(k.slice(2), v); }
      else if (k === 'checked' || k === 'value') { node[k] = v; }
      else { node.setAttribute(k, v === true ? '' : v); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); } });
    return node;
  }

  // ---- pure operations on a schema (each returns nothing, changes the schema in place) --------------------------
  function kindOf(p) {
    p = p || {};
    if (p.type === 'array') { return 'multi'; }
    if (p.enum || p['x-options']) { return 'single'; }
    if (p.type === 'boolean') { return 'boolean'; }
    if (p.type === 'number') { return 'number'; }
    if (p.type === 'integer') { return 'integer'; }
    if (p.format === 'date') { return 'date'; }
    if (p['x-widget'] === 'textarea') { return 'textarea'; }
    return 'text';
  }

  function optionsOf(p) {
    if (!p) { return []; }
    if (p.type === 'array') { return (p.items && p.items.enum) || []; }
    return p.enum || [];
  }

  function fieldNames(schema) { return Object.keys(schema.properties || {}); }

  function isRequired(schema, name) { return (schema.required || []).indexOf(name) >= 0; }

  /** A field of kind `kind`, keeping what `old` had that no type decides. */
  function makeProp(kind, old) {
    old = old || {};
    var p = {};
    Object.keys(old).forEach(function (k) { if (TYPE_KEYS.indexOf(k) < 0) { p[k] = old[k]; } });
    var options = optionsOf(old).length ? optionsOf(old).slice() : ['选项一', '选项二'];
    if (kind === 'text') { p.type = 'string'; p.maxLength = old.maxLength || 200; }
    else if (kind === 'textarea') { p.type = 'string'; p.maxLength = old.maxLength || 1000; p['x-widget'] = 'textarea'; }
    else if (kind === 'number' || kind === 'integer') {
      p.type = kind;
      if (old.minimum !== undefined) { p.minimum = old.minimum; }
      if (old.maximum !== undefined) { p.maximum = old.maximum; }
    } else if (kind === 'date') { p.type = 'string'; p.format = 'date'; if (old['x-date']) { p['x-date'] = old['x-date']; } }
    else if (kind === 'boolean') { p.type = 'boolean'; }
    else if (kind === 'single') { p.type = 'string'; p.enum = options; p['x-widget'] = old['x-widget'] === 'select' ? 'select' : 'radio'; }
    else if (kind === 'multi') {
      p.type = 'array'; p.items = { type: 'string', enum: options }; p.uniqueItems = true; p['x-widget'] = 'checkboxes';
    }
    // the title first, as in the other forms
    var out = { title: p.title };
    Object.keys(p).forEach(function (k) { if (k !== 'title') { out[k] = p[k]; } });
    if (out.title === undefined) { delete out.title; }
    return out;
  }

  function newName(schema) {
    var names = fieldNames(schema);
    for (var i = names.length + 1; ; i++) {
      if (names.indexOf('field_' + i) < 0) { return 'field_' + i; }
    }
  }

  function addField(schema, title, kind) {
    var name = newName(schema);
    schema.properties = schema.properties || {};
    var p = makeProp(kind || 'text', { title: title || '新字段' });
    schema.properties[name] = p;
    var sections = schema['x-sections'];
    if (Array.isArray(sections) && sections.length) {
      (sections[sections.length - 1].fields = sections[sections.length - 1].fields || []).push(name);
    }
    return name;
  }

  function setRequired(schema, name, on) {
    var req = (schema.required || []).filter(function (n) { return n !== name; });
    if (on) { req.push(name); }
    schema.required = req;
    var p = schema.properties[name];
    if (p && p.type === 'boolean') {            // a box that must be ticked, as the other forms write it
      if (on) { p.const = true; } else { delete p.const; }
    }
  }

  /** {field, value} of a simple condition `if X == Y`, else null. */
  function simpleIf(rule) {
    var cond = rule && rule.if;
    if (!cond || typeof cond !== 'object' || !cond.properties) { return null; }
    var keys = Object.keys(cond.properties);
    var extra = Object.keys(cond).filter(function (k) { return k !== 'properties' && k !== 'required'; });
    if (keys.length !== 1 || extra.length) { return null; }
    var test = cond.properties[keys[0]];
    if (!test || typeof test !== 'object' || !('const' in test) || Object.keys(test).length !== 1) { return null; }
    return { field: keys[0], value: test.const };
  }

  /** The conditions under which `name` is required: [{field, value, index}]. */
  function conditionsOf(schema, name) {
    var out = [];
    (schema.allOf || []).forEach(function (rule, index) {
      var cond = simpleIf(rule);
      if (cond && rule.then && (rule.then.required || []).indexOf(name) >= 0) {
        out.push({ field: cond.field, value: cond.value, index: index });
      }
    });
    return out;
  }

  function addCondition(schema, name, field, value) {
    schema.allOf = schema.allOf || [];
    var boolean = schema.properties[name] && schema.properties[name].type === 'boolean';
    var rule = schema.allOf.filter(function (r) {
      var c = simpleIf(r);
      return c && c.field === field && c.value === value && r.then && !r.else;
    })[0];
    if (!rule) {
      var test = {};
      test[field] = { const: value };
      rule = { if: { properties: test, required: [field] }, then: { required: [] } };
      schema.allOf.push(rule);
    }
    rule.then.required = rule.then.required || [];
    if (rule.then.required.indexOf(name) < 0) { rule.then.required.push(name); }
    if (boolean) {
      rule.then.properties = rule.then.properties || {};
      rule.then.properties[name] = { const: true };
    }
  }

  function removeCondition(schema, name, index) {
    var rule = schema.allOf[index];
    if (!rule || !rule.then) { return; }
    rule.then.required = (rule.then.required || []).filter(function (n) { return n !== name; });
    if (rule.then.properties) {
      delete rule.then.properties[name];
      if (!Object.keys(rule.then.properties).length) { delete rule.then.properties; }
    }
    if (!rule.then.required.length) { delete rule.then.required; }
    if (!Object.keys(rule.then).length && !rule.else) { schema.allOf.splice(index, 1); }
    if (!schema.allOf.length) { delete schema.allOf; }
  }

  /** Every place a field is named: properties, required, conditions, sections, x-document. */
  function renameField(schema, from, to) {
    if (from === to) { return; }
    var props = {};
    Object.keys(schema.properties).forEach(function (k) { props[k === from ? to : k] = schema.properties[k]; });
    schema.properties = props;
    var swap = function (list) { return (list || []).map(function (n) { return n === from ? to : n; }); };
    if (schema.required) { schema.required = swap(schema.required); }
    (schema.allOf || []).forEach(function (rule) {
      ['if', 'then', 'else'].forEach(function (part) {
        var s = rule[part];
        if (!s || typeof s !== 'object') { return; }
        if (s.required) { s.required = swap(s.required); }
        if (s.properties && from in s.properties) {
          var p = {};
          Object.keys(s.properties).forEach(function (k) { p[k === from ? to : k] = s.properties[k]; });
          s.properties = p;
        }
      });
    });
    (schema['x-sections'] || []).forEach(function (s) { s.fields = swap(s.fields); });
    if (schema['x-document'] && schema['x-document'].date_field === from) { schema['x-document'].date_field = to; }
  }

  function removeField(schema, name) {
    delete schema.properties[name];
    schema.required = (schema.required || []).filter(function (n) { return n !== name; });
    // conditions on it go, and it goes from conditions on others
    for (var i = (schema.allOf || []).length - 1; i >= 0; i--) {
      var rule = schema.allOf[i];
      var cond = simpleIf(rule);
      if (cond && cond.field === name) { schema.allOf.splice(i, 1); continue; }
      if (rule.then && (rule.then.required || []).indexOf(name) >= 0) { removeCondition(schema, name, i); }
    }
    if (schema.allOf && !schema.allOf.length) { delete schema.allOf; }
    (schema['x-sections'] || []).forEach(function (s) {
      s.fields = (s.fields || []).filter(function (n) { return n !== name; });
    });
  }

  /** Move a field one place up (-1) or down (+1): in the properties and, where the form has sections, in its section. */
  function moveField(schema, name, delta) {
    var names = fieldNames(schema);
    var sections = schema['x-sections'];
    if (Array.isArray(sections) && sections.length) {
      for (var k = 0; k < sections.length; k++) {
        var list = sections[k].fields = sections[k].fields || [];
        var at = list.indexOf(name), to = at + delta;
        if (at < 0) { continue; }
        if (to >= 0 && to < list.length) { list[at] = list[to]; list[to] = name; }
        else if (sections[k + delta]) {          // across the edge of its section: into the next one
          list.splice(at, 1);
          var next = sections[k + delta].fields = sections[k + delta].fields || [];
          if (delta < 0) { next.push(name); } else { next.unshift(name); }
        }
        break;
      }
    }
    var i = names.indexOf(name), j = i + delta;
    if (i < 0 || j < 0 || j >= names.length) { return; }
    names[i] = names[j]; names[j] = name;
    var props = {};
    names.forEach(function (n) { props[n] = schema.properties[n]; });
    schema.properties = props;
  }

  function sectionsOf(schema) {
    var sections = schema['x-sections'];
    return Array.isArray(sections) && sections.length ? sections : null;
  }

  function sectionOf(schema, name) {
    var sections = sectionsOf(schema) || [];
    for (var i = 0; i < sections.length; i++) {
      if ((sections[i].fields || []).indexOf(name) >= 0) { return i; }
    }
    return -1;
  }

  /** Put a field at the end of section `index` (of a form with x-sections). */
  function moveToSection(schema, name, index) {
    var sections = sectionsOf(schema);
    if (!sections || !sections[index]) { return; }
    sections.forEach(function (s) { s.fields = (s.fields || []).filter(function (n) { return n !== name; }); });
    sections[index].fields.push(name);
  }

  /** The fields in the order the form shows them (by section where it has sections). */
  function shownOrder(schema) {
    var names = fieldNames(schema);
    var sections = schema['x-sections'];
    if (!Array.isArray(sections) || !sections.length) { return names; }
    var out = [];
    sections.forEach(function (s) { (s.fields || []).forEach(function (n) { if (names.indexOf(n) >= 0 && out.indexOf(n) < 0) { out.push(n); } }); });
    names.forEach(function (n) { if (out.indexOf(n) < 0) { out.push(n); } });
    return out;
  }

  function valueText(value) {
    if (value === true) { return '是（已勾选）'; }
    if (value === false) { return '否（未勾选）'; }
    return String(value);
  }

  // ---- the designer -------------------------------------------------------------------------------------------
  function open(container, panel, text, onChange) {
    var schema;
    try { schema = JSON.parse(text); } catch (e) { return false; }
    if (!schema || typeof schema !== 'object' || Array.isArray(schema)) { return false; }
    schema.properties = schema.properties && typeof schema.properties === 'object' ? schema.properties : {};
    var selected = null;

    function changed() {
      onChange(JSON.stringify(schema, null, 2) + '\n');
      render();
    }

    function render() {
      container.textContent = '';
      var title = el('input', { id: 'form-title', value: schema.title || '', 'aria-label': '表单标题' });
      title.addEventListener('change', function () { schema.title = title.value.trim(); changed(); });
      var desc = el('textarea', { id: 'form-description', rows: '2', 'aria-label': '表单说明' });
      desc.value = schema.description || '';
      desc.addEventListener('change', function () {
        if (desc.value.trim()) { schema.description = desc.value.trim(); } else { delete schema.description; }
        changed();
      });
      container.appendChild(el('div', { className: 'form-head' }, [
        el('label', {}, ['表单标题', title]), el('label', {}, ['表单说明（显示在表单上方）', desc])]));

      var table = el('table', { className: 'list form-fields', id: 'form-fields' });
      var sections = sectionsOf(schema);
      var heads = sections ? ['顺序', '字段', '分组', '类型', '必填', ''] : ['顺序', '字段', '类型', '必填', ''];
      table.appendChild(el('thead', {}, [el('tr', {}, heads.map(function (h) { return el('th', { text: h }); }))]));
      var body = el('tbody');
      var order = shownOrder(schema);
      order.forEach(function (name, i) {
        var p = schema.properties[name] || {};
        var conds = conditionsOf(schema, name);
        var req = isRequired(schema, name) ? '必填' : (conds.length ? '条件必填' : '');
        var up = el('button', { type: 'button', className: 'small secondary', text: '↑', title: '上移', 'aria-label': '上移 ' + (p.title || name),
                                disabled: i === 0, onclick: function (e) { e.stopPropagation(); moveField(schema, name, -1); changed(); } });
        var down = el('button', { type: 'button', className: 'small secondary', text: '↓', title: '下移', 'aria-label': '下移 ' + (p.title || name),
                                  disabled: i === order.length - 1, onclick: function (e) { e.stopPropagation(); moveField(schema, name, 1); changed(); } });
        var remove = el('button', { type: 'button', className: 'small secondary', text: '删除', 'aria-label': '删除 ' + (p.title || name),
          onclick: function (e) {
            e.stopPropagation();
            if (!window.confirm('删除字段“' + (p.title || name) + '”？以它为条件的规则也一并删除。')) { return; }
            removeField(schema, name);
            if (selected === name) { selected = null; }
            changed();
          } });
        var row = el('tr', { 'data-field': name, className: name === selected ? 'selected' : '', tabindex: '0',
                             onclick: function () { selected = name; render(); } }, [
          el('td', { className: 'order' }, [up, down]),
          el('td', {}, [el('strong', { text: p.title || name })]),
          sections ? el('td', { className: 'section', text: sectionOf(schema, name) >= 0 ? sections[sectionOf(schema, name)].title || '' : '（未分组，不显示）' }) : null,
          el('td', { text: TYPE_NAMES[kindOf(p)] + (p['x-options'] ? '（' + (SOURCES[p['x-options']] || '人员名单') + '）' : '') }),
          el('td', { text: req }),
          el('td', {}, [el('button', { type: 'button', className: 'small', text: '编辑', onclick: function (e) { e.stopPropagation(); selected = name; render(); } }), ' ', remove])
        ]);
        body.appendChild(row);
      });
      table.appendChild(body);
      container.appendChild(table);
      if (!order.length) { container.appendChild(el('p', { className: 'muted', text: '表单还没有字段。' })); }

      var newTitle = el('input', { id: 'new-field-title', placeholder: '字段标题，如“现场核验情况”', 'aria-label': '新字段标题' });
      var newKind = el('select', { id: 'new-field-type', 'aria-label': '新字段类型' },
        TYPES.map(function (t) { return el('option', { value: t[0], text: t[1] }); }));
      var add = el('button', { type: 'button', id: 'add-field', text: '添加字段', onclick: function () {
        if (!newTitle.value.trim()) { newTitle.focus(); return; }
        selected = addField(schema, newTitle.value.trim(), newKind.value);
        changed();
        var first = panel.querySelector('input, select');
        if (first) { first.focus(); }
      } });
      container.appendChild(el('div', { className: 'add-field' }, [newTitle, newKind, add]));

      var others = (schema.allOf || []).filter(function (rule) { return !simpleIf(rule) || !rule.then || rule.else; }).length;
      if (others) {
        container.appendChild(el('p', { className: 'muted', text: '另有 ' + others + ' 条较复杂的规则，在“JSON 文本”中查看和修改。' }));
      }
      renderField();
    }

    function renderField() {
      panel.textContent = '';
      panel.removeAttribute('data-element');
      if (!selected || !schema.properties[selected]) {
        panel.appendChild(el('p', { className: 'muted', text: '点选左侧的一个字段，在这里修改它的标题、类型、是否必填、选项和条件。' }));
        return;
      }
      var name = selected;
      var p = schema.properties[name];
      var kind = kindOf(p);
      panel.setAttribute('data-field', name);
      panel.appendChild(el('h3', { text: '字段：' + (p.title || name) }));

      var title = el('input', { id: 'field-title', value: p.title || '' });
      title.addEventListener('change', function () { p.title = title.value.trim() || name; changed(); });
      panel.appendChild(el('label', {}, ['标题', title]));

      var typeSelect = el('select', { id: 'field-type', disabled: !!p['x-options'] },
        TYPES.map(function (t) { return el('option', { value: t[0], text: t[1], selected: t[0] === kind }); }));
      typeSelect.value = kind;
      typeSelect.addEventListener('change', function () {
        var wasRequired = isRequired(schema, name);
        schema.properties[name] = makeProp(typeSelect.value, p);
        if (wasRequired) { setRequired(schema, name, true); }
        changed();
      });
      panel.appendChild(el('label', {}, ['类型', typeSelect]));

      var sections = sectionsOf(schema);
      if (sections) {
        var where = el('select', { id: 'field-section' }, [el('option', { value: '-1', text: '（未分组：表单上不显示）' })].concat(
          sections.map(function (sec, i) { return el('option', { value: String(i), text: sec.title || ('第 ' + (i + 1) + ' 组') }); })));
        where.value = String(sectionOf(schema, name));
        where.addEventListener('change', function () {
          var index = parseInt(where.value, 10);
          if (index < 0) {
            sections.forEach(function (sec) { sec.fields = (sec.fields || []).filter(function (n) { return n !== name; }); });
          } else {
            moveToSection(schema, name, index);
          }
          changed();
        });
        panel.appendChild(el('label', {}, ['分组（放在该组末尾）', where]));
      }

      var required = el('input', { type: 'checkbox', id: 'field-required', checked: isRequired(schema, name) });
      required.addEventListener('change', function () { setRequired(schema, name, required.checked); changed(); });
      panel.appendChild(el('label', { className: 'check' }, [required, kind === 'boolean' ? ' 必须勾选' : ' 必填']));

      if (kind === 'single' || kind === 'multi') {
        if (p['x-options']) {
          panel.appendChild(el('p', { className: 'muted', text: '选项由服务提供：' + (SOURCES[p['x-options']] || '具有该岗位的在岗人员') + '。' }));
        } else {
          var opts = el('textarea', { id: 'field-options', rows: '4' });
          opts.value = optionsOf(p).join('\n');
          opts.addEventListener('change', function () {
            var list = opts.value.split('\n').map(function (s) { return s.trim(); }).filter(function (s, i, all) { return s && all.indexOf(s) === i; });
            if (!list.length) { opts.value = optionsOf(p).join('\n'); return; }
            if (kind === 'multi') { p.items = p.items || { type: 'string' }; p.items.enum = list; } else { p.enum = list; }
            changed();
          });
          panel.appendChild(el('label', {}, ['选项（每行一项）', opts]));
        }
        if (kind === 'single') {
          var widget = el('select', { id: 'field-widget' }, [
            el('option', { value: 'radio', text: '单选按钮', selected: p['x-widget'] !== 'select' }),
            el('option', { value: 'select', text: '下拉列表', selected: p['x-widget'] === 'select' })]);
          widget.addEventListener('change', function () { p['x-widget'] = widget.value; changed(); });
          panel.appendChild(el('label', {}, ['显示为', widget]));
        }
      }
      if (kind === 'text' || kind === 'textarea') {
        var max = el('input', { type: 'number', id: 'field-max', min: '1', max: '100000', value: p.maxLength || '' });
        max.addEventListener('change', function () {
          var n = parseInt(max.value, 10);
          if (n > 0) { p.maxLength = n; } else { delete p.maxLength; }
          changed();
        });
        panel.appendChild(el('label', {}, ['最多字数', max]));
      }
      if (kind === 'date') {
        var rule = el('select', { id: 'field-date-rule' }, [
          el('option', { value: '', text: '不限' }),
          el('option', { value: 'not_past', text: '不能早于今天', selected: p['x-date'] === 'not_past' }),
          el('option', { value: 'not_future', text: '不能晚于今天', selected: p['x-date'] === 'not_future' })]);
        rule.addEventListener('change', function () {
          if (rule.value) { p['x-date'] = rule.value; } else { delete p['x-date']; }
          changed();
        });
        panel.appendChild(el('label', {}, ['日期范围', rule]));
      }
      var hint = el('textarea', { id: 'field-description', rows: '2' });
      hint.value = p.description || '';
      hint.addEventListener('change', function () {
        if (hint.value.trim()) { p.description = hint.value.trim(); } else { delete p.description; }
        changed();
      });
      panel.appendChild(el('label', {}, ['填写说明（显示在字段下方）', hint]));

      // conditions: required when another field has a value
      panel.appendChild(el('h3', { text: '条件必填' }));
      var conds = conditionsOf(schema, name);
      var list = el('ul', { className: 'conditions', id: 'field-conditions' });
      conds.forEach(function (c) {
        var other = schema.properties[c.field] || {};
        list.appendChild(el('li', {}, [
          '当“' + (other.title || c.field) + '”为“' + valueText(c.value) + '”时' + (kind === 'boolean' ? '必须勾选' : '必填') + ' ',
          el('button', { type: 'button', className: 'small secondary', text: '删除条件',
                         onclick: function () { removeCondition(schema, name, c.index); changed(); } })]));
      });
      if (!conds.length) { list.appendChild(el('li', { className: 'muted', text: '没有条件。' })); }
      panel.appendChild(list);
      var candidates = shownOrder(schema).filter(function (n) {
        var k = kindOf(schema.properties[n]);
        return n !== name && ((k === 'single' && optionsOf(schema.properties[n]).length) || k === 'boolean');
      });
      if (candidates.length) {
        var whenField = el('select', { id: 'condition-field', 'aria-label': '条件字段' },
          candidates.map(function (n) { return el('option', { value: n, text: schema.properties[n].title || n }); }));
        var whenValue = el('select', { id: 'condition-value', 'aria-label': '条件取值' });
        var fillValues = function () {
          whenValue.textContent = '';
          var q = schema.properties[whenField.value];
          var values = kindOf(q) === 'boolean' ? [true, false] : optionsOf(q);
          values.forEach(function (v, i) { whenValue.appendChild(el('option', { value: String(i), text: valueText(v) })); });
          whenValue.values = values;
        };
        whenField.addEventListener('change', fillValues);
        fillValues();
        panel.appendChild(el('div', { className: 'add-condition' }, ['当', whenField, '为', whenValue, '时必填',
          el('button', { type: 'button', className: 'small', id: 'add-condition', text: '添加条件', onclick: function () {
            addCondition(schema, name, whenField.value, whenValue.values[parseInt(whenValue.value, 10)]);
            changed();
          } })]));
      } else {
        panel.appendChild(el('p', { className: 'muted', text: '条件须基于本表单的单选或是否字段。' }));
      }

      var key = el('input', { id: 'field-name', value: name, pattern: '[A-Za-z][A-Za-z0-9_]*' });
      key.addEventListener('change', function () {
        var to = key.value.trim();
        if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(to) || (to !== name && schema.properties[to])) {
          key.value = name;
          window.alert('字段名须以英文字母开头，只含英文字母、数字和下划线，且在本表单中唯一。');
          return;
        }
        renameField(schema, name, to);
        selected = to;
        changed();
      });
      panel.appendChild(el('details', { className: 'expert' }, [el('summary', { text: '字段名（流程中的条件、脚本以它引用）' }),
        el('label', {}, ['字段名', key]),
        el('p', { className: 'muted', text: '改名后，流程图中引用旧字段名的条件和脚本须一并修改。' })]));
    }

    render();
    return true;
  }

  window.BangbanFormEditor = {
    open: open,
    ops: { kindOf: kindOf, makeProp: makeProp, addField: addField, setRequired: setRequired, addCondition: addCondition,
           removeCondition: removeCondition, conditionsOf: conditionsOf, removeField: removeField, moveField: moveField,
           renameField: renameField, moveToSection: moveToSection, shownOrder: shownOrder }
  };
}());
