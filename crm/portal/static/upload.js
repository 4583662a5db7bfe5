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
  var HASH_SLICE = 4 * 1024 * 1024;
  var numberFormat = window.Intl && Intl.NumberFormat
    ? new Intl.NumberFormat(language, { maximumFractionDigits: 1 })
    : { format: function (x) { return String(Math.round(x * 10) / 10); } };

  // SHA-256 fed piece by piece (Web Crypto only hashes a whole buffer at once).
  var K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);

  function Sha256() {
    this.h = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this.w = new Int32Array(64);
    this.tail = new Uint8Array(64);
    this.tailLength = 0;
    this.length = 0;
  }

  Sha256.prototype.blocks = function (bytes, start, end) {
    var w = this.w, h = this.h, a, b, c, d, e, f, g, k, i, j, x, y, t1, t2;
    for (var p = start; p < end; p += 64) {
      for (i = 0; i < 16; i++) {
        j = p + i * 4;
        w[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
      }
      for (i = 16; i < 64; i++) {
        x = w[i - 15];
        y = w[i - 2];
        w[i] = (w[i - 16] + (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) +
                w[i - 7] + (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10))) | 0;
      }
      a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; k = h[7];
      for (i = 0; i < 64; i++) {
        t1 = (k + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
              ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
        t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
              ((a & b) ^ (a & c) ^ (b & c))) | 0;
        k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
      h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + k) | 0;
    }
  };

  Sha256.prototype.update = function (bytes) {
    var start = 0;
    this.length += bytes.length;
    if (this.tailLength) {
      start = Math.min(64 - this.tailLength, bytes.length);
      this.tail.set(bytes.subarray(0, start), this.tailLength);
      this.tailLength += start;
      if (this.tailLength < 64) {
        return;
      }
      this.blocks(this.tail, 0, 64);
      this.tailLength = 0;
    }
    var whole = start + Math.floor((bytes.length - start) / 64) * 64;
    this.blocks(bytes, start, whole);
    this.tail.set(bytes.subarray(whole), 0);
    this.tailLength = bytes.length - whole;
  };

  Sha256.prototype.hex = function () {
    var tail = this.tail, n = this.tailLength, bits = this.length * 8, out = "", i;
    tail[n++] = 0x80;
    if (n > 56) {
      tail.fill(0, n);
      this.blocks(tail, 0, 64);
      n = 0;
    }
    tail.fill(0, n);
    var high = Math.floor(bits / 4294967296), low = bits >>> 0;
    for (i = 0; i < 4; i++) {
      tail[56 + i] = (high >>> (24 - 8 * i)) & 255;
      tail[60 + i] = (low >>> (24 - 8 * i)) & 255;
    }
    this.blocks(tail, 0, 64);
    for (i = 0; i < 8; i++) {
      out += ("00000000" + (this.h[i] >>> 0).toString(16)).slice(-8);
    }
    return out;
  };

  function hashFile(file) {
    var digest = new Sha256(), position = 0;
    function next() {
      if (position >= file.size) {
        return Promise.resolve(digest.hex());
      }
      var end = Math.min(position + HASH_SLICE, file.size);
      return file.slice(position, end).arrayBuffer().then(function (buffer) {
        digest.update(new Uint8Array(buffer));
        position = end;
        return next();
      });
    }
    return next();
  }

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
        !window.Blob || !Blob.prototype.arrayBuffer || !window.btoa) {
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
      return hashFile(file).then(function (sha256) {
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
