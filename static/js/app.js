// StageBackup page behaviour. A file, not inline code: the Content-Security-Policy allows only 'self' scripts.
(function () {
  "use strict";

  // -- copy buttons next to long names, paths and hashes (templates/_names.html) --------------------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".copy-text");
    if (!button || !navigator.clipboard) return;
    navigator.clipboard.writeText(button.getAttribute("data-copy") || "").then(function () {
      button.classList.add("copied");
      window.setTimeout(function () { button.classList.remove("copied"); }, 1500);
    });
  });

  // -- confirmation for destructive plain forms (htmx buttons use hx-confirm) --------------------------
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

  // -- terminal log: follow the end unless the operator scrolled up ---------------------------------------
  // The log panels grow with their content and the page is the only scroller, so "following" means keeping
  // the window at the bottom of the page when lines are appended, if it was there before the append.
  var FOLLOW_SLACK_PX = 48;
  var followNext = false;

  function atBottom() {
    var root = document.documentElement;
    return window.innerHeight + window.scrollY >= root.scrollHeight - FOLLOW_SLACK_PX;
  }

  function isLogTarget(elt) {
    return elt && elt.classList && elt.classList.contains("terminal-lines");
  }

  function trim(lines) {
    var terminal = lines.closest(".terminal");
    var max = terminal && parseInt(terminal.getAttribute("data-max-lines") || "0", 10);
    if (!max) return;
    var rows = lines.querySelectorAll(".log-line");
    for (var i = 0; i < rows.length - max; i++) rows[i].remove();
  }

  // New lines arrive out of band with the job card's poll (templates/backup/_card_poll.html): htmx fires
  // oobBeforeSwap once on the log, and oobAfterSwap once per line appended (the detail names the log).
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    if (isLogTarget(event.detail.target)) followNext = atBottom();
  });

  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (!isLogTarget(event.detail.target)) return;
    trim(event.detail.target);
    if (followNext) window.scrollTo(0, document.documentElement.scrollHeight);
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    // A form posted in place shows its refusal (400, the form with its errors) instead of dropping it.
    var form = event.detail.elt;
    if (event.detail.xhr.status === 400 && form && form.hasAttribute && form.hasAttribute("data-swap-refusal")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
    // The folder picker shows why a folder cannot be opened (403, 404) where its sub-folders would be.
    if (event.detail.xhr.status >= 400 && event.detail.xhr.status < 500 && form && form.closest &&
        form.closest("#folder-picker")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // -- polling only while the tab is visible ---------------------------------------------------------------
  // Pollers (hx-trigger="every …") keep their timer; a tick while the tab is hidden sends nothing, and the
  // first tick after the tab shows again brings the page up to date. (htmx's [filter] syntax would need
  // eval, which the CSP forbids.)
  function isPoller(elt) {
    var trigger = elt && elt.getAttribute && elt.getAttribute("hx-trigger");
    return !!trigger && /^\s*every\s/.test(trigger);
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (document.visibilityState !== "visible" && isPoller(event.detail.elt)) event.preventDefault();
  });

  // -- project form: show the fields that apply to the chosen mode and destination ------------------------
  function refreshConditional(form) {
    form.querySelectorAll("[data-show-if]").forEach(function (group) {
      var parts = group.getAttribute("data-show-if").split("=");
      var checked = form.querySelector('input[name="' + parts[0] + '"]:checked');
      group.hidden = !checked || parts[1].split("|").indexOf(checked.value) < 0;
    });
  }

  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-conditional]");
    if (form) refreshConditional(form);
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-conditional]").forEach(refreshConditional);
  });

  // -- folder picker (templates/explorer/_picker.html): the dialog fills the field that opened it ----------
  // A textarea (one path per line, e.g. the project's sources) gets the folder added as a line; an input
  // gets its value replaced.
  var pickerField = null;

  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-picker-for]");
    if (opener) {
      pickerField = document.getElementById(opener.getAttribute("data-picker-for"));
      return;
    }
    var use = event.target.closest && event.target.closest(".picker-use");
    if (!use) return;
    event.preventDefault();  // the button sits in a <summary>: choosing must not also open the folder
    if (pickerField) {
      var path = use.getAttribute("data-path");
      if (pickerField.tagName === "TEXTAREA") {
        var lines = pickerField.value.split("\n").filter(function (line) { return line.trim() !== ""; });
        if (lines.indexOf(path) < 0) lines.push(path);
        pickerField.value = lines.join("\n");
      } else {
        pickerField.value = path;
      }
      pickerField.dispatchEvent(new Event("change", { bubbles: true }));
    }
    var dialog = use.closest(".modal");
    if (dialog && window.bootstrap) window.bootstrap.Modal.getOrCreateInstance(dialog).hide();
  });

  // -- restore basket: a tick is kept on the server at once, so it survives other folders and searches --------
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    var url = box.getAttribute && box.getAttribute("data-basket-url");
    if (!url || !window.htmx) return;
    window.htmx.ajax("POST", url, {
      target: "#restore-basket", swap: "outerHTML", values: { on: box.checked ? "1" : "0" },
      headers: { "X-CSRFToken": csrfToken() },
    });
  });

  // An entry removed in the basket panel (or all of them) unticks its box on the page. Only then: answers to
  // quick ticks may arrive out of order, and an older panel must not untick a newer tick.
  function isBasketRemoval(elt) {
    return !!elt && !!elt.classList && (elt.classList.contains("restore-basket-remove") || elt.id === "restore-basket-clear");
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    var panel = document.getElementById("restore-basket");
    if (!panel || !isBasketRemoval(event.detail.requestConfig && event.detail.requestConfig.elt)) return;
    var ticked = {};
    panel.querySelectorAll("li[data-path]").forEach(function (li) { ticked[li.getAttribute("data-path")] = true; });
    document.querySelectorAll("input[data-basket-url]").forEach(function (box) { box.checked = !!ticked[box.value]; });
  });
})();
