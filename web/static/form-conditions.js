/* Fields shown only under a condition of their form (engine.forms.shown_when, from the form's if/then rules): a
   field with data-shown-when='{"review_decision": ["不予受理"]}' is shown, and sent, only while that field has one of
   those values; otherwise it is hidden and its inputs disabled, so nothing stale is submitted. */
(function () {
  'use strict';
  var fields = document.querySelectorAll('[data-shown-when]');
  if (!fields.length) { return; }

  function valueOf(form, name) {
    var inputs = form.querySelectorAll('[name="' + name + '"]');
    for (var i = 0; i < inputs.length; i++) {
      var el = inputs[i];
      if (el.type === 'radio' || el.type === 'checkbox') {
        if (el.checked) { return el.type === 'checkbox' && el.value === 'true' ? true : el.value; }
      } else {
        return el.value;
      }
    }
    return null;
  }

  function update() {
    Array.prototype.forEach.call(fields, function (div) {
      var form = div.closest('form');
      if (!form) { return; }
      var when = JSON.parse(div.getAttribute('data-shown-when'));
      var shown = Object.keys(when).every(function (name) {
        return when[name].indexOf(valueOf(form, name)) >= 0;
      });
      div.hidden = !shown;
      Array.prototype.forEach.call(div.querySelectorAll('input, select, textarea'), function (el) {
        el.disabled = !shown;
      });
    });
  }

  document.addEventListener('change', update);
  document.addEventListener('input', update);
  update();
}());
