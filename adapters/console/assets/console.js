// Adds each time's local equivalent on hover. The pages are complete without this script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when.getTime())) {
      el.title = "Local time: " + when.toLocaleString();
    }
  });
});
