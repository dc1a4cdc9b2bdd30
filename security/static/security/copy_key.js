// Copy buttons for the one-time key page. A static file, not inline, because the admin's CSP
// allows scripts from this origin only.
"use strict";

function copyFromTarget(button) {
  const source = document.getElementById(button.dataset.copyTarget);
  const status = document.getElementById(button.dataset.copyStatus);
  navigator.clipboard.writeText(source.textContent.trim()).then(
    () => { status.textContent = "Copied to the clipboard."; },
    () => { status.textContent = "Copying failed: select the key and copy it by hand."; },
  );
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy-target]")) {
    button.hidden = false;  // without JavaScript there is nothing to click
    button.addEventListener("click", () => copyFromTarget(button));
  }
});
