// Live updates for the household's page: when the gateway commits a decision, the
// server sends a "change" event on /events and this refreshes the page's live part
// (the Now section, the Devices table, History) without a reload. Without
// JavaScript the page works as before: reload to see news.
(function () {
  "use strict";
  var live = document.querySelector("main#now, body");
  if (!window.EventSource || !window.fetch || !live || location.pathname === "/login") {
    return;
  }
  var pending = false;
  var running = false;

  function refresh() {
    if (running) {
      pending = true; // one more fetch after this one: changes are never lost
      return;
    }
    running = true;
    fetch(location.pathname, { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) {
        if (answer.redirected || !answer.ok) {
          throw new Error("logged out");
        }
        return answer.text();
      })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html");
        var mine = document.getElementById("now");
        var theirs = fresh.getElementById("now");
        if (mine && theirs) {
          mine.replaceWith(document.importNode(theirs, true));
        } else {
          // Devices and History: the whole body (imported scripts do not run again).
          document.body.replaceChildren.apply(
            document.body,
            Array.prototype.map.call(fresh.body.childNodes, function (n) {
              return document.importNode(n, true);
            })
          );
        }
        document.documentElement.dataset.liveUpdates =
          String(Number(document.documentElement.dataset.liveUpdates || 0) + 1);
      })
      .catch(function () {
        source.close();
      })
      .finally(function () {
        running = false;
        if (pending) {
          pending = false;
          refresh();
        }
      });
  }

  var opened = 0;
  var source = new EventSource("/events");
  source.addEventListener("change", refresh);
  source.addEventListener("open", function () {
    document.documentElement.dataset.live = "open";
    // After a reconnect, changes sent while the stream was down are caught up.
    if (opened++ > 0) {
      refresh();
    }
  });
})();
