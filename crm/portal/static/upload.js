/* The patient's document upload with a progress bar (crm/portal/uploads.py).
 *
 * Without this script the form posts and the server answers with a page; with it, the
 * file goes up resumably (tus 1.0.0, crm/portal/resumable.py; the loop the agency panel
 * shares, window.crmResumableUpload in crm/documents/static/resumable.js): hashed here
 * (SHA-256, so the server can check it received exactly this file), then sent in chunks.
 * When the connection drops (hotel Wi-Fi), the page says so in words, waits, asks the
 * server how much it has and goes on from there; reloading the page and choosing the same
 * file again also resumes. Progress shows in the <progress> element, as a percentage and
 * in words ("Sent 12 MB of 480 MB"). When it is done, the page the server shows (the
 * success message and the list of received documents) replaces this one's <main>; a
 * refusal is the server's sentence in the patient's language. A browser without what this
 * needs sends the form in one request with XMLHttpRequest, as before. Nothing inline,
 * nothing from elsewhere: the page's Content-Security-Policy allows this site only.
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


  // ------------------------------------------------------------------ resumable (tus)

  var numberFormat = window.Intl && Intl.NumberFormat
    ? new Intl.NumberFormat(language, { maximumFractionDigits: 1 })
    : { format: function (x) { return String(Math.round(x * 10) / 10); } };

  function say(words) {
    var line = $("upload-words");
    if (line) {
      line.textContent = words || "";
    }
  }

  function saySent(form, sent, total) {
    var mb = 1024 * 1024;
    say(form.dataset.sent
      .replace("{sent}", numberFormat.format(sent / mb))
      .replace("{total}", numberFormat.format(total / mb)));
    showProgress(total ? sent / total : 1);
  }

  function problemWords(form, text, status) {
    try {
      var problem = JSON.parse(text);
      if (problem && problem.words) {
        return problem.words;
      }
    } catch (error) {
      // not a problem document
    }
    return status === 429 ? form.dataset.busy : form.dataset.failed;
  }

  function showPage(url) {
    var request = new XMLHttpRequest();
    request.open("GET", url);
    request.responseType = "document";
    request.addEventListener("load", function () {
      if (!showServersAnswer(request.response, true)) {
        showProgress(1);
        answer($("upload-progress-label").dataset.done, true);
      }
    });
    request.addEventListener("error", function () {
      showProgress(1);
      answer($("upload-progress-label").dataset.done, true);
    });
    request.send();
  }

  function sendResumable(form) {
    var resumable = window.crmResumableUpload;
    if (!form.dataset.resumable || !form.elements.file.files[0] || !resumable ||
        !resumable.supported()) {
      return false;
    }
    var button = form.querySelector("button[type=submit]");

    function stop(words) {
      button.disabled = false;
      $("upload-progress-box").hidden = true;
      say("");
      answer(words);
    }

    button.disabled = true;
    showProgress(0);
    resumable(form, {
      storagePrefix: "crm-upload:",
      checking: function () { say(form.dataset.checking); },
      sent: function (sent, total) { saySent(form, sent, total); },
      reconnecting: function () { say(form.dataset.reconnecting); },
      done: showPage,
      wordsOf: function (text, status) { return problemWords(form, text, status); },
      refused: stop,
      gaveUp: function () { stop(form.dataset.network); }
    });
    return true;
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
      if (!sendResumable(form)) {
        send(form);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bind);
  } else {
    bind();
  }
})();
