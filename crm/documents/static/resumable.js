/* The resumable upload loop (tus 1.0.0, crm/documents/tus.py) shared by the agency panel
 * (crm/panel/static/upload.js) and the patient portal (crm/portal/static/upload.js);
 * served by the app from one place (crm/documents/assets.py). Each page keeps its own
 * words and what it shows; this holds only the protocol.
 *
 * window.crmResumableUpload.supported() says whether the browser has what this needs
 * (fetch, Promise, Blob.arrayBuffer, btoa, and window.crmHashFile from sha256.js).
 * window.crmResumableUpload(form, page) sends the form's chosen file to
 * form.dataset.resumable: hashed first, the upload started with its length, kind, name and
 * SHA-256, then the bytes in chunks (form.dataset.chunkBytes, else 16 MiB). When the
 * connection drops it waits (until the browser is back online, at most 30 s, growing),
 * asks the server how much it has and goes on from there; choosing the same file again
 * after a reload resumes too (the upload's address is kept in localStorage under
 * page.storagePrefix). `page` says what the page shows:
 *   headers            sent with every request besides Tus-Resumable (a CSRF token)
 *   checking()         the file is being hashed
 *   sent(bytes, total) progress
 *   reconnecting()     the connection was lost, it will go on when it is back
 *   done(page)         stored; `page` is the address of the page to show
 *   wordsOf(text, status) the sentence for a refused request's answer
 *   refused(words)     stopped: the server said no (or the connection never came back)
 *   gaveUp()           forty tries without the connection coming back
 */
(function () {
  "use strict";
  var CHUNK = 16 * 1024 * 1024;
  var TRIES = 40;

  function base64(text) {
    return btoa(unescape(encodeURIComponent(text)));
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

  function upload(form, page) {
    var file = form.elements.file.files[0];
    var kind = form.elements.kind.value;
    var chunk = Number(form.dataset.chunkBytes) || CHUNK;
    var key = page.storagePrefix + form.dataset.resumable + ":" + kind + ":" + file.name +
      ":" + file.size + ":" + file.lastModified;
    var location = remembered(key);
    var failures = 0;

    function headers(extra) {
      var all = { "Tus-Resumable": "1.0.0" };
      [page.headers, extra].forEach(function (more) {
        Object.keys(more || {}).forEach(function (name) { all[name] = more[name]; });
      });
      return all;
    }

    function begin() {
      page.checking();
      return window.crmHashFile(file).then(function (sha256) {
        return fetch(form.dataset.resumable, {
          method: "POST",
          headers: headers({
            "Upload-Length": String(file.size),
            "Upload-Metadata": "kind " + base64(kind) + ",filename " + base64(file.name) +
              ",sha256 " + base64(sha256)
          })
        });
      }).then(function (created) {
        if (created.status !== 201) {
          return created.text().then(function (text) {
            throw { refused: page.wordsOf(text, created.status) };
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
      return fetch(location, { method: "HEAD", headers: headers(), cache: "no-store" })
        .then(function (response) {
          if (response.status === 404 || response.headers.get("Upload-Refused")) {
            remembered(key, null); // gone or refused: start again
            location = null;
            return begin();
          }
          if (!response.ok) {
            throw new Error("status " + response.status);
          }
          return Number(response.headers.get("Upload-Offset"));
        });
    }

    function patch(offset) {
      return new Promise(function (resolve, reject) {
        var request = new XMLHttpRequest();
        request.open("PATCH", location);
        var all = headers({
          "Upload-Offset": String(offset),
          "Content-Type": "application/offset+octet-stream"
        });
        Object.keys(all).forEach(function (name) { request.setRequestHeader(name, all[name]); });
        request.upload.addEventListener("progress", function (event) {
          page.sent(offset + event.loaded, file.size);
        });
        request.addEventListener("load", function () { resolve(request); });
        request.addEventListener("error", function () { reject(new Error("network")); });
        request.addEventListener("timeout", function () { reject(new Error("timeout")); });
        request.send(file.slice(offset, Math.min(offset + chunk, file.size)));
      });
    }

    function retry() {
      failures += 1;
      if (failures > TRIES) {
        page.gaveUp();
        return null;
      }
      page.reconnecting();
      return pause(Math.min(30, 2 * failures)).then(step);
    }

    function from(offset) {
      page.sent(offset, file.size);
      return patch(offset).then(function (request) {
        if (request.status === 204) {
          failures = 0;
          return from(Number(request.getResponseHeader("Upload-Offset")));
        }
        if (request.status === 200) {
          remembered(key, null);
          page.sent(file.size, file.size);
          page.done(JSON.parse(request.responseText).page);
          return null;
        }
        if (request.status === 409 || request.status === 429 || request.status >= 500) {
          return retry(); // ask where it stands, then go on from there
        }
        remembered(key, null);
        page.refused(page.wordsOf(request.responseText, request.status));
        return null;
      }, retry);
    }

    function step() {
      return where().then(from, function (error) {
        if (error && error.refused) {
          page.refused(error.refused);
          return null;
        }
        return retry();
      });
    }

    return step();
  }

  upload.supported = function () {
    return Boolean(window.fetch && window.Promise && window.Blob && Blob.prototype.arrayBuffer &&
      window.btoa && window.crmHashFile);
  };

  window.crmResumableUpload = upload;
})();
