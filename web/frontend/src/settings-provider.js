/* A properties provider for bpmn-js-properties-panel: the element's name, script and condition, and its
   spiffworkflow:property settings (表单, 阶段, 办理人 …) as labelled fields. What the settings are, their choices and
   how they are read and written come from the page (config.bangbanSettings, web/static/modeler.js), so this file
   only draws them:
     settings(element) -> [{name, label, kind: 'text'|'textarea'|'select', description, options: [[value, label]]}]
     read(element, name) -> string;  write(element, name, value)  (one undoable command) */
import { h } from '@bpmn-io/properties-panel/preact';
import {
  TextFieldEntry, TextAreaEntry, SelectEntry, isTextFieldEntryEdited, isTextAreaEntryEdited, isSelectEntryEdited
} from '@bpmn-io/properties-panel';
import { useService } from 'bpmn-js-properties-panel';

function NameEntry(props) {
  const { element, id } = props;
  const modeling = useService('modeling');
  const debounce = useService('debounceInput');
  return h(TextFieldEntry, {
    element, id, label: '名称', debounce,
    getValue: (el) => el.businessObject.name || '',
    setValue: (value) => modeling.updateLabel(element, value)
  });
}

function ScriptEntry(props) {
  const { element, id } = props;
  const modeling = useService('modeling');
  const debounce = useService('debounceInput');
  return h(TextAreaEntry, {
    element, id, label: '脚本（Python，缩进有意义）', debounce, rows: 8, monospace: true,
    getValue: (el) => el.businessObject.script || '',
    setValue: (value) => modeling.updateProperties(element, { script: value })
  });
}

function ConditionEntry(props) {
  const { element, id } = props;
  const modeling = useService('modeling');
  const moddle = useService('moddle');
  const debounce = useService('debounceInput');
  return h(TextFieldEntry, {
    element, id, label: '条件（Python 表达式）', debounce,
    description: '如 review_decision == \'受理\'；不填则总是通过',
    getValue: (el) => (el.businessObject.conditionExpression && el.businessObject.conditionExpression.body) || '',
    setValue: (value) => {
      const body = (value || '').trim();
      modeling.updateProperties(element, {
        conditionExpression: body ? moddle.create('bpmn:FormalExpression', { body }) : undefined
      });
    }
  });
}

function SettingEntry(props) {
  const { element, id, setting, api } = props;
  const debounce = useService('debounceInput');
  const common = {
    element, id, label: setting.label, description: setting.description,
    getValue: (el) => api.read(el, setting.name),
    setValue: (value) => api.write(element, setting.name, value)
  };
  if (setting.kind === 'select') {
    return h(SelectEntry, { ...common, getOptions: () => setting.options.map(([value, label]) => ({ value, label })) });
  }
  if (setting.kind === 'textarea') {
    return h(TextAreaEntry, { ...common, debounce, rows: 3, autoResize: true });
  }
  return h(TextFieldEntry, { ...common, debounce });
}

function SettingsProvider(propertiesPanel, config) {
  this._api = config || {};
  propertiesPanel.registerProvider(500, this);
}
SettingsProvider.$inject = ['propertiesPanel', 'config.bangbanSettings'];

SettingsProvider.prototype.getGroups = function (element) {
  const api = this._api;
  return (groups) => {
    const type = element.type;
    const general = [];
    if (type !== 'bpmn:Process' && type !== 'bpmn:Collaboration' && type !== 'label') {
      general.push({ id: 'name', component: NameEntry, isEdited: isTextFieldEntryEdited });
    }
    if (type === 'bpmn:ScriptTask') {
      general.push({ id: 'script', component: ScriptEntry, isEdited: isTextAreaEntryEdited });
    }
    if (type === 'bpmn:SequenceFlow') {
      general.push({ id: 'condition', component: ConditionEntry, isEdited: isTextFieldEntryEdited });
    }
    if (general.length) { groups.push({ id: 'general', label: '常规', entries: general }); }
    const settings = api.settings ? api.settings(element) : [];
    if (settings.length) {
      groups.push({
        id: 'bangban-settings',
        label: type === 'bpmn:UserTask' ? '办理设置' : '流程设置',
        entries: settings.map((setting) => ({
          id: setting.name,
          setting,
          api,
          component: SettingEntry,
          isEdited: { select: isSelectEntryEdited, textarea: isTextAreaEntryEdited }[setting.kind] || isTextFieldEntryEdited
        }))
      });
    }
    return groups;
  };
};

export default { __init__: ['bangbanSettingsProvider'], bangbanSettingsProvider: ['type', SettingsProvider] };
