/* Confirmation of a final step done in the browser (e.g. 发布 a process version): a button with
   data-confirm="后果……确定吗？" asks with the browser's own dialog before its click reaches any other handler;
   cancelling stops the click there. data-confirm-needs="id" skips the question while that field is empty (the page
   then says what is missing). Steps that end a case are confirmed on the server (the page's confirmation box), so
   they work without JavaScript as well. */
(function () {
  'use strict';
  document.addEventListener('click', function (event) {
    var el = event.target && event.target.closest ? event.target.closest('[data-confirm]') : null;
    if (!el || el.disabled) { return; }
    var needs = el.getAttribute('data-confirm-needs');
    var field = needs ? document.getElementById(needs) : null;
    if (field && !String(field.value || '').trim()) { return; }
    if (!window.confirm(el.getAttribute('data-confirm'))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
}());
