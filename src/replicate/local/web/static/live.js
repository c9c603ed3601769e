// A running prediction's page: poll ?format=json&since=N for the status and the new log text,
// and reload once the prediction is terminal (the server then renders the output).
// The logs box follows new lines by itself while it is scrolled to the bottom (see web.css).
(function () {
  var live = document.getElementById("live");
  var since = parseInt(live.getAttribute("data-since"), 10) || 0;
  var poll = parseInt(live.getAttribute("data-poll"), 10) || 500;
  var status = document.getElementById("status");
  var logs = document.getElementById("logs");
  function tick() {
    fetch(location.pathname + "?format=json&since=" + since, {cache: "no-store"})
      .then(function (r) {
        if (r.status === 404) { live.textContent = "This prediction no longer exists."; return null; }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (d) {
        if (d === null) { return; }
        status.textContent = d.status;
        status.className = "status " + d.status;
        if (d.reset) { logs.textContent = d.logs; } else if (d.logs) { logs.textContent += d.logs; }
        since = d.since;
        if (d.terminal) { location.reload(); return; }
        setTimeout(tick, poll);
      })
      .catch(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, poll);
})();
