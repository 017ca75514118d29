// Progressive enhancement: new audit records of this case appear without a reload (SSE).
(function () {
  var status = document.getElementById("live-status");
  var table = document.getElementById("timeline-body");
  if (!status || !table || !window.EventSource) { return; }
  var source = new EventSource(status.getAttribute("data-source"));
  source.onopen = function () { status.textContent = "live: new events appear here"; };
  source.onerror = function () { status.textContent = "live updates paused (reconnecting)"; };
  source.addEventListener("record", function (event) {
    var step = JSON.parse(event.data);
    var row = document.createElement("tr");
    row.className = "new";
    ["at", "party", "event", "kind", "message_id", "verdict"].forEach(function (key) {
      var cell = document.createElement("td");
      cell.textContent = step[key] || "";
      row.appendChild(cell);
    });
    table.appendChild(row);
  });
})();
