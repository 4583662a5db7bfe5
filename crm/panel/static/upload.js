/* The agency panel's document upload, resumable (tus 1.0.0, crm/panel/resumable.py).
 *
 * Without this script the form posts the file in one request. With it, the file goes up
 * resumably through the loop the portal shares (window.crmResumableUpload,
 * crm/documents/static/resumable.js; the hash from window.crmHashFile, /p/assets/sha256.js):
 * hashed, then sent in 16 MiB chunks; the progress shows in a <progress> and in words.
 * When the connection drops, the page says so, waits, asks the server how much it has and
 * goes on from there; choosing the same file again after a reload resumes too. Done, the
 * referral's page is shown again (it lists the document and says it was received);
 * refused, the server's sentence is shown where the form shows its errors. Every request
 * carries the form's CSRF token in X-CSRFToken.
 */
(function () {
  "use strict";
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

  function send(form) {
    form.querySelector("button[type=submit]").disabled = true;
    window.crmResumableUpload(form, {
      storagePrefix: "crm-panel-upload:",
      headers: { "X-CSRFToken": form.elements.csrf_token.value },
      checking: function () {
        $("upload-progress-box").hidden = false;
        $("upload-words").textContent = "Checking the file before sending it…";
      },
      sent: progress,
      reconnecting: function () {
        $("upload-words").textContent =
          "The connection was lost. The upload will go on from where it stopped when it is back.";
      },
      done: function (page) {
        var target = new URL(page, window.location.href);
        if (target.pathname === window.location.pathname) {
          window.location.hash = target.hash; // the same page: load it again to show it
          window.location.reload();
        } else {
          window.location.assign(target.href);
        }
      },
      wordsOf: wordsOf,
      refused: function (words) { refused(form, words); },
      gaveUp: function () {
        refused(form, "The upload stopped: the connection did not come back. Choose the file " +
          "again to go on from where it stopped.");
      }
    });
  }

  function bind() {
    var form = $("panel-upload-form");
    if (!form || !window.crmResumableUpload || !window.crmResumableUpload.supported()) {
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
