/* The patient's document upload with a progress bar (crm/portal/uploads.py).
 *
 * Without this script the form posts and the server answers with a page; with it, the
 * file goes up resumably (tus 1.0.0, crm/portal/resumable.py): hashed here (SHA-256, so
 * the server can check it received exactly this file), then sent in chunks. When the
 * connection drops (hotel Wi-Fi), the page says so in words, waits, asks the server how
 * much it has and goes on from there; reloading the page and choosing the same file again
 * also resumes. Progress shows in the <progress> element, as a percentage and in words
 * ("Sent 12 MB of 480 MB"). When it is done, the page the server shows (the success
 * message and the list of received documents) replaces this one's <main>; a refusal is
 * the server's sentence in the patient's language. A browser without what this needs
 * sends the form in one request with XMLHttpRequest, as before. Nothing inline, nothing
 * from elsewhere: the page's Content-Security-Policy allows this site only.
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

  var CHUNK = 16 * 1024 * 1024;
  var numberFormat = window.Intl && Intl.NumberFormat
    ? new Intl.NumberFormat(language, { maximumFractionDigits: 1 })
    : { format: function (x) { return String(Math.round(x * 10) / 10); } };

  function base64(text) {
    return btoa(unescape(encodeURIComponent(text)));
  }

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

  function remembered(key, value) {
    try {
      if (value === undefined) {
        return window.localStorage.getItem(key);
      }
      if (value === null) {
        window.localStorage.removeItem(key);
      } else {
        window.localStorage.setItem(key, value);
      }
    } catch (error) {
      return null; // storage refused (private browsing): resuming after a reload is lost
    }
    return null;
  }

  function tusHeaders(extra) {
    var headers = { "Tus-Resumable": "1.0.0" };
    Object.keys(extra || {}).forEach(function (name) { headers[name] = extra[name]; });
    return headers;
  }

  function offsetOf(location) {
    return fetch(location, { method: "HEAD", headers: tusHeaders(), cache: "no-store" })
      .then(function (response) {
        if (response.status === 404 || response.headers.get("Upload-Refused")) {
          return null; // gone or refused: start again
        }
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return Number(response.headers.get("Upload-Offset"));
      });
  }

  function patch(form, location, file, offset) {
    var end = Math.min(offset + (Number(form.dataset.chunkBytes) || CHUNK), file.size);
    return new Promise(function (resolve, reject) {
      var request = new XMLHttpRequest();
      request.open("PATCH", location);
      request.setRequestHeader("Tus-Resumable", "1.0.0");
      request.setRequestHeader("Upload-Offset", String(offset));
      request.setRequestHeader("Content-Type", "application/offset+octet-stream");
      request.upload.addEventListener("progress", function (event) {
        saySent(form, offset + event.loaded, file.size);
      });
      request.addEventListener("load", function () { resolve(request); });
      request.addEventListener("error", function () { reject(new Error("network")); });
      request.addEventListener("timeout", function () { reject(new Error("timeout")); });
      request.send(file.slice(offset, end));
    });
  }

  function pause(seconds) {
    return new Promise(function (resolve) {
      var timer = setTimeout(done, seconds * 1000);
      function done() {
        clearTimeout(timer);
        window.removeEventListener("online", done);
        resolve();
      }
      window.addEventListener("online", done);
    });
  }

  function problemWords(request, form) {
    try {
      var problem = JSON.parse(request.responseText);
      if (problem && problem.words) {
        return problem.words;
      }
    } catch (error) {
      // not a problem document
    }
    return request.status === 429 ? form.dataset.busy : form.dataset.failed;
  }

  function showPage(url, form) {
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
    var file = form.elements.file.files[0];
    var kind = form.elements.kind.value;
    if (!form.dataset.resumable || !file || !window.fetch || !window.Promise ||
        !window.Blob || !Blob.prototype.arrayBuffer || !window.btoa || !window.crmHashFile) {
      return false;
    }
    var button = form.querySelector("button[type=submit]");
    var key = "crm-upload:" + form.dataset.resumable + ":" + kind + ":" + file.name + ":" +
      file.size + ":" + file.lastModified;
    var location = remembered(key);
    var failures = 0;

    function stop(words) {
      button.disabled = false;
      $("upload-progress-box").hidden = true;
      say("");
      answer(words);
    }

    function begin() {
      say(form.dataset.checking);
      return window.crmHashFile(file).then(function (sha256) {
        var metadata = "kind " + base64(kind) + ",filename " + base64(file.name) +
          ",sha256 " + base64(sha256);
        return fetch(form.dataset.resumable, {
          method: "POST",
          headers: tusHeaders({ "Upload-Length": String(file.size), "Upload-Metadata": metadata })
        });
      }).then(function (created) {
        if (created.status !== 201) {
          return created.text().then(function (text) {
            throw { refused: problemWords({ responseText: text, status: created.status }, form) };
          });
        }
        location = created.headers.get("Location");
        remembered(key, location);
        return 0;
      });
    }

    function where() {
      if (!location) {
        return begin();
      }
      return offsetOf(location).then(function (offset) {
        if (offset === null) {
          remembered(key, null);
          location = null;
          return begin();
        }
        return offset;
      });
    }

    function retry() {
      failures += 1;
      if (failures > 40) {
        stop(form.dataset.network);
        return Promise.resolve();
      }
      say(form.dataset.reconnecting);
      return pause(Math.min(30, 2 * failures)).then(step);
    }

    function sendFrom(offset) {
      saySent(form, offset, file.size);
      return patch(form, location, file, offset).then(function (request) {
        if (request.status === 204) {
          failures = 0;
          return sendFrom(Number(request.getResponseHeader("Upload-Offset")));
        }
        if (request.status === 200) {
          remembered(key, null);
          saySent(form, file.size, file.size);
          showPage(JSON.parse(request.responseText).page, form);
          return null;
        }
        if (request.status === 409 || request.status === 429 || request.status >= 500) {
          return retry(); // ask where it stands, then go on from there
        }
        remembered(key, null);
        stop(problemWords(request, form));
        return null;
      }, retry);
    }

    function step() {
      return where().then(sendFrom, function (error) {
        if (error && error.refused) {
          stop(error.refused);
          return null;
        }
        return retry();
      });
    }

    button.disabled = true;
    showProgress(0);
    step();
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
