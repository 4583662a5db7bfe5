/* The patient's document upload with a progress bar (crm/portal/uploads.py).
 *
 * Without this script the form posts and the server answers with a page; with it, the
 * same form is sent with XMLHttpRequest so that the upload's progress shows in the
 * <progress> element and as a percentage, and the page the server answered with (the
 * success message and the list of received documents, or the refusal in words) replaces
 * this one's <main> without leaving it. Nothing inline, nothing from elsewhere: the
 * page's Content-Security-Policy allows scripts and connections to this site only.
 */
(function () {
  "use strict";
  if (window.crmUploadReady) {
    return;
  }
  window.crmUploadReady = true;

  var language = document.documentElement.lang || "en";
  var percentFormat = window.Intl && Intl.NumberFormat
    ? new Intl.NumberFormat(language, { style: "percent", maximumFractionDigits: 0 })
    : { format: function (x) { return Math.round(x * 100) + "%"; } };

  function $(id) {
    return document.getElementById(id);
  }

  function showProgress(fraction) {
    var box = $("upload-progress-box");
    var bar = $("upload-progress");
    var text = percentFormat.format(fraction);
    if (!box || !bar) {
      return;
    }
    box.hidden = false;
    bar.value = Math.round(fraction * 100);
    bar.textContent = text;
    $("upload-percent").textContent = text;
  }

  function answer(words, good) {
    var region = $("upload-answer");
    var paragraph = document.createElement("p");
    paragraph.className = good ? "note" : "warn";
    paragraph.setAttribute("role", good ? "status" : "alert");
    paragraph.textContent = words;
    region.replaceChildren(paragraph);
    region.focus();
  }

  function tooLarge(form) {
    var option = form.elements.kind.selectedOptions[0];
    var file = form.elements.file.files[0];
    if (!option || !file || !option.dataset.maxBytes) {
      return null;
    }
    return file.size > Number(option.dataset.maxBytes) ? option.dataset.tooLarge : null;
  }

  function showServersAnswer(page, succeeded) {
    var fresh = page && page.querySelector("main");
    var current = document.querySelector("main");
    if (!fresh || !fresh.querySelector("#upload-answer") || !current) {
      return false;
    }
    current.replaceWith(document.adoptNode(fresh));
    bind();
    if (succeeded) {
      showProgress(1);
      var label = $("upload-progress-label");
      label.textContent = label.dataset.done;
    }
    var region = $("upload-answer");
    region.scrollIntoView({ block: "center" });
    region.focus({ preventScroll: true });
    return true;
  }

  function send(form) {
    var button = form.querySelector("button[type=submit]");
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.responseType = "document";
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable && event.total > 0) {
        showProgress(event.loaded / event.total);
      }
    });
    request.addEventListener("load", function () {
      button.disabled = false;
      var succeeded = request.status >= 200 && request.status < 300;
      if (showServersAnswer(request.response, succeeded)) {
        return;
      }
      if (/[?&]received=\d+/.test(request.responseURL || "")) {
        // stored; only the page after it did not come (the rate limit, a hiccup)
        showProgress(1);
        answer($("upload-progress-label").dataset.done, true);
        return;
      }
      $("upload-progress-box").hidden = true;
      answer(request.status === 429 ? form.dataset.busy : form.dataset.failed);
    });
    request.addEventListener("error", function () {
      button.disabled = false;
      $("upload-progress-box").hidden = true;
      answer(form.dataset.network);
    });
    button.disabled = true;
    showProgress(0);
    request.send(new FormData(form));
  }

  function bind() {
    var form = $("upload-form");
    if (!form || !window.FormData || !window.XMLHttpRequest) {
      return;
    }
    form.addEventListener("submit", function (event) {
      if (!form.checkValidity()) {
        return; // the browser says what is missing
      }
      event.preventDefault();
      var refusal = tooLarge(form);
      if (refusal) {
        answer(refusal); // no need to send a file the server would refuse
        return;
      }
      send(form);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bind);
  } else {
    bind();
  }
})();
