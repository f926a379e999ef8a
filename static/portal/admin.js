// On a narrow screen the admin lets a wide inline table scroll sideways inside its box; a box
// that scrolls must be reachable by keyboard to be scrolled (WCAG 2.1.1), so such a box
// becomes a named, focusable region (arrow keys then scroll it). Checked again on resize.
(function () {
  "use strict";
  function update() {
    document.querySelectorAll(".inline-group").forEach(function (group) {
      var scrolls = group.scrollWidth > group.clientWidth + 1;
      var heading = group.querySelector(".inline-heading[id], h2[id]");
      if (scrolls) {
        group.tabIndex = 0;
        group.setAttribute("role", "region");
        if (heading) group.setAttribute("aria-labelledby", heading.id);
      } else if (group.getAttribute("role") === "region") {
        group.removeAttribute("tabindex");
        group.removeAttribute("role");
        group.removeAttribute("aria-labelledby");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", update);
  window.addEventListener("resize", update);
})();
