/* The agency panel's document upload, resumable (tus 1.0.0, crm/panel/resumable.py).
 *
 * Without this script the form posts the file in one request. With it, the file is
 * hashed here (window.crmHashFile, /p/assets/sha256.js), the upload is started with its
 * length, kind, name and SHA-256, and the bytes go in 16 MiB chunks; the progress shows
 * in a <progress> and in words. When the connection drops, the page says so, waits, asks
 * the server how much it has and goes on from there; choosing the same file again after
 * a reload resumes too. Done, the referral's page is shown again (it lists the document
 * and says it was received); refused, the server's sentence is shown where the form shows
 * its errors. Every request carries the form's CSRF token in X-CSRFToken.
 */
(function () {
  "use strict";
  var CHUNK = 16 * 1024 * 1024;
  var MB = 1024 * 1024;

  function $(id) {
    return document.getElementById(id);
  }

  function megabytes(bytes) {
    return (Math.round((bytes / MB) * 10) / 10).toString();
  }

  function progress(sent, total) {
    $("upload-progress-box").hidden = false;
    $("upload-progress").value = total ? Math.round((sent / total) * 100) : 100;
    $("upload-words").textContent = "Sent " + megabytes(sent) + " MB of " + megabytes(total) + " MB";
  }

  function refused(form, words) {
    var box = $("upload-error");
    if (!box) {
      box = document.createElement("p");
      box.className = "error";
      box.id = "upload-error";
      box.setAttribute("role", "alert");
      form.querySelector("h3").after(box);
    }
    box.textContent = words;
    $("upload-progress-box").hidden = true;
    form.querySelector("button[type=submit]").disabled = false;
  }

  function wordsOf(text, status) {
    try {
      var problem = JSON.parse(text);
      return problem.words || problem.detail;
    } catch (error) {
      return "The document was not taken (" + status + "). Try again.";
    }
  }

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
      return null;
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

  function send(form) {
    var file = form.elements.file.files[0];
    var kind = form.elements.kind.value;
    var csrf = form.elements.csrf_token.value;
    var key = "crm-panel-upload:" + form.dataset.resumable + ":" + kind + ":" + file.name +
      ":" + file.size + ":" + file.lastModified;
    var location = remembered(key);
    var failures = 0;

    function headers(extra) {
      var all = { "Tus-Resumable": "1.0.0", "X-CSRFToken": csrf };
      Object.keys(extra || {}).forEach(function (name) { all[name] = extra[name]; });
      return all;
    }

    function begin() {
      $("upload-progress-box").hidden = false;
      $("upload-words").textContent = "Checking the file before sending it…";
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
            throw { refused: wordsOf(text, created.status) };
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
            remembered(key, null);
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
          progress(offset + event.loaded, file.size);
        });
        request.addEventListener("load", function () { resolve(request); });
        request.addEventListener("error", function () { reject(new Error("network")); });
        request.send(file.slice(offset, Math.min(offset + CHUNK, file.size)));
      });
    }

    function retry() {
      failures += 1;
      if (failures > 40) {
        refused(form, "The upload stopped: the connection did not come back. Choose the file " +
          "again to go on from where it stopped.");
        return null;
      }
      $("upload-words").textContent =
        "The connection was lost. The upload will go on from where it stopped when it is back.";
      return pause(Math.min(30, 2 * failures)).then(step);
    }

    function from(offset) {
      progress(offset, file.size);
      return patch(offset).then(function (request) {
        if (request.status === 204) {
          failures = 0;
          return from(Number(request.getResponseHeader("Upload-Offset")));
        }
        if (request.status === 200) {
          remembered(key, null);
          progress(file.size, file.size);
          var target = new URL(JSON.parse(request.responseText).page, window.location.href);
          if (target.pathname === window.location.pathname) {
            window.location.hash = target.hash; // the same page: load it again to show it
            window.location.reload();
          } else {
            window.location.assign(target.href);
          }
          return null;
        }
        if (request.status === 409 || request.status === 429 || request.status >= 500) {
          return retry();
        }
        remembered(key, null);
        refused(form, wordsOf(request.responseText, request.status));
        return null;
      }, retry);
    }

    function step() {
      return where().then(from, function (error) {
        if (error && error.refused) {
          refused(form, error.refused);
          return null;
        }
        return retry();
      });
    }

    form.querySelector("button[type=submit]").disabled = true;
    step();
  }

  function bind() {
    var form = $("panel-upload-form");
    if (!form || !window.fetch || !window.Promise || !window.crmHashFile || !window.Blob ||
        !Blob.prototype.arrayBuffer || !window.btoa) {
      return; // the form posts the file in one request
    }
    form.addEventListener("submit", function (event) {
      if (!form.elements.file.files.length) {
        return; // the server says no file was chosen
      }
      event.preventDefault();
      send(form);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bind);
  } else {
    bind();
  }
})();
