// Saves a choice as soon as a box is ticked or cleared, instead of waiting for the
// Save button; without JavaScript the form works as it is.
(function () {
  var form = document.getElementById("prefs");
  var status = document.getElementById("status");
  if (!form || !window.fetch) return;
  form.addEventListener("change", function (e) {
    if (e.target.name !== "on") return;
    var data = new URLSearchParams(new FormData(form));
    data.set("action", "save");
    fetch(window.location.href, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (r) { return r.json(); }).then(function (j) {
      status.textContent = j.message;
      status.hidden = false;
    }).catch(function () { form.submit(); });
  });
})();
