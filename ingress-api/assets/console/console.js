// orderflow console: the dashboard's live feed. Opens the console's event
// stream (the API's, authenticated by the session cookie) and prepends one
// line per event to #live-feed, newest first, keeping the latest 50. The
// browser's EventSource reconnects by itself and resumes with
// Last-Event-ID, so nothing is missed across a short drop.
(function () {
  "use strict";

  var MAX_ITEMS = 50;
  var EVENT_TYPES = [
    "order.confirmed",
    "order.rejected",
    "order.cancelled",
    "order.fulfilled",
    "stock.changed",
    "stock.low",
    "stock.recovered"
  ];

  // One readable line for an event of the stream.
  function describe(type, event) {
    switch (type) {
      case "stock.changed":
        return type + " " + event.sku + ": on hand " + event.on_hand +
          ", reserved " + event.reserved + ", available " + event.available;
      case "stock.low":
      case "stock.recovered":
        return type + " " + event.sku + ": available " + event.available +
          ", threshold " + event.threshold;
      case "order.rejected":
        return type + " " + event.order_id + ": " +
          String(event.reason).replace(/_/g, " ");
      default:
        return type + " " + event.order_id;
    }
  }

  function start() {
    var feed = document.getElementById("live-feed");
    if (!feed || !window.EventSource) {
      return;
    }
    var status = document.getElementById("live-status");
    var source = new EventSource("/console/events");

    EVENT_TYPES.forEach(function (type) {
      source.addEventListener(type, function (message) {
        var event;
        try {
          event = JSON.parse(message.data);
        } catch (ignored) {
          return;
        }
        var item = document.createElement("li");
        item.setAttribute("data-event-type", type);
        // textContent, never innerHTML: event fields are shown, not parsed.
        item.textContent = describe(type, event);
        feed.insertBefore(item, feed.firstChild);
        while (feed.children.length > MAX_ITEMS) {
          feed.removeChild(feed.lastChild);
        }
      });
    });

    source.addEventListener("error", function () {
      // CLOSED means the browser gave up (the session ended, say); otherwise
      // it is already reconnecting.
      if (status && source.readyState === EventSource.CLOSED) {
        status.textContent = "Live updates stopped. Reload the page to resume.";
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
