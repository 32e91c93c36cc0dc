// On a phone (see app.css, max-width 720px) the rows of a list table are shown as stacked cards, each cell with its
// column's heading in front of it: this copies the headings into the cells' data-label once the page is loaded.
(function () {
  function label(table) {
    var heads = [];
    var headRow = table.querySelector("thead tr") || table.querySelector("tr");
    if (!headRow) return;
    Array.prototype.forEach.call(headRow.children, function (cell) {
      var span = parseInt(cell.getAttribute("colspan") || "1", 10);
      for (var i = 0; i < span; i++) heads.push(cell.tagName === "TH" ? cell.textContent.trim() : "");
    });
    Array.prototype.forEach.call(table.querySelectorAll("tr"), function (row) {
      var col = 0;
      Array.prototype.forEach.call(row.children, function (cell) {
        if (cell.tagName === "TD" && heads[col] && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", heads[col]);
        col += parseInt(cell.getAttribute("colspan") || "1", 10);
      });
    });
  }
  function all() { Array.prototype.forEach.call(document.querySelectorAll("table.list, table#deliveries, table#failures"), label); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", all); else all();
})();
