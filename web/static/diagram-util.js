/* Shared helpers for the bpmn-js diagrams (case viewer and modeler). No secrets: the JSON API is called with the
   session cookie (credentials same-origin) and Content-Type application/json. */
(function () {
  'use strict';

  var FONT = '"WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", Arial, sans-serif';

  /** fetch JSON; resolves {status, ok, body}; rejects only when the server is unreachable or does not answer JSON. */
  function requestJSON(url, options) {
    options = options || {};
    var init = { method: options.method || 'GET', credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (options.body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    }
    return fetch(url, init).then(function (response) {
      return response.json().catch(function () {
        throw new Error('服务器返回的不是 JSON（HTTP ' + response.status + '）');
      }).then(function (body) {
        return { status: response.status, ok: response.ok, body: body };
      });
    });
  }

  function isContainer(element) {
    var bo = element.businessObject;
    return (element.type === 'bpmn:SubProcess' || element.type === 'bpmn:Participant' || element.type === 'bpmn:Lane') &&
      (element.type !== 'bpmn:SubProcess' || (bo && bo.di && bo.di.isExpanded) || element.isExpanded ||
       (element.collapsed === false));
  }

  /** The whole diagram in view; `leftInset` px (or a function giving them) on the left kept free: the
      modeler's palette stands there. */
  function fit(viewer, leftInset) {
    var canvas = viewer.get('canvas');
    var size = canvas.getSize();
    if (!(size.width > 0 && size.height > 0)) { return; }
    canvas.zoom('fit-viewport', 'auto');
    var inset = (typeof leftInset === 'function' ? leftInset() : leftInset) || 0;
    var inner = canvas.viewbox().inner;
    if (!inset || !inner || !inner.width || size.width <= inset + 40) { return; }
    var pad = 20;
    var zoom = Math.min((size.width - inset - 2 * pad) / inner.width, (size.height - 2 * pad) / inner.height, 1);
    canvas.viewbox({ x: inner.x - (inset + pad) / zoom, y: inner.y - pad / zoom, width: size.width / zoom, height: size.height / zoom });
  }

  /** Center the view on some elements at a readable zoom (the whole diagram when there are none). */
  function focus(viewer, ids, scale) {
    var canvas = viewer.get('canvas');
    var registry = viewer.get('elementRegistry');
    var shapes = (ids || []).map(function (id) { return registry.get(id); }).filter(function (e) { return e && !e.waypoints; });
    if (!shapes.length) {
      fit(viewer);
      return;
    }
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    shapes.forEach(function (s) {
      minX = Math.min(minX, s.x); minY = Math.min(minY, s.y);
      maxX = Math.max(maxX, s.x + s.width); maxY = Math.max(maxY, s.y + s.height);
    });
    var size = canvas.getSize();
    if (!(size.width > 0 && size.height > 0)) { return; }
    var zoom = scale || 0.8;
    zoom = Math.min(zoom, size.width / (maxX - minX + 160), size.height / (maxY - minY + 160));
    zoom = Math.max(zoom, 0.2);
    var width = size.width / zoom, height = size.height / zoom;
    var x = (minX + maxX) / 2 - width / 2, y = (minY + maxY) / 2 - height / 2;
    var inner = canvas.viewbox().inner;          // the whole diagram: show no empty space left of or above it
    if (inner && inner.width) {
      x = Math.max(x, inner.x - 20);
      y = Math.max(y, inner.y - 20);
    }
    canvas.viewbox({ x: x, y: y, width: width, height: height });
  }

  function zoomBy(viewer, factor) {
    var canvas = viewer.get('canvas');
    canvas.zoom(Math.max(0.1, Math.min(4, canvas.zoom() * factor)));
  }

  /** Wire buttons with data-diagram="fit|in|out|current" inside `root` to the viewer. */
  function wireTools(root, viewer, currentIds, leftInset) {
    Array.prototype.forEach.call(root.querySelectorAll('[data-diagram]'), function (button) {
      button.addEventListener('click', function () {
        var what = button.getAttribute('data-diagram');
        if (what === 'fit') { fit(viewer, leftInset); }
        else if (what === 'in') { zoomBy(viewer, 1.25); }
        else if (what === 'out') { zoomBy(viewer, 0.8); }
        else if (what === 'current') { focus(viewer, currentIds()); }
      });
    });
  }

  window.BangbanDiagram = {
    FONT: FONT, requestJSON: requestJSON, isContainer: isContainer, fit: fit, focus: focus, zoomBy: zoomBy,
    wireTools: wireTools
  };
}());
