/* The modeler bundle (built by esbuild into build/, see package.json "build"; ./run builds it after npm ci):
   bpmn-js's Modeler with bpmn-js-properties-panel, its Chinese words (bpmn-js-i18n), and our properties provider.
   The page's own script (web/static/modeler.js) finds them as window.BpmnJS, window.BangbanBpmnZh and
   window.BangbanPanel, as it found the UMD build before. */
import Modeler from 'bpmn-js/lib/Modeler';
import { BpmnPropertiesPanelModule } from 'bpmn-js-properties-panel';
import zh from 'bpmn-js-i18n/translations/zn.js';
import SettingsProviderModule from './settings-provider.js';

import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import 'bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css';
import '@bpmn-io/properties-panel/assets/properties-panel.css';

window.BpmnJS = Modeler;
window.BangbanBpmnZh = zh;
window.BangbanPanel = { modules: [BpmnPropertiesPanelModule, SettingsProviderModule] };
