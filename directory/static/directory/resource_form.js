/* The derived resource form: NPI check as you type, reference autocomplete.
   Both ask the admin's own JSON endpoints (same origin, GET, staff session), so the page
   applies exactly the server's rules. No inline code: the admin's CSP forbids it. */
"use strict";

(function () {
  const DELAY_MS = 250;

  function debounce(fn) {
    let timer = null;
    return function (...args) {
      clearTimeout(timer);
      timer = setTimeout(() => fn.apply(this, args), DELAY_MS);
    };
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null));
  }

  function sibling(input, part) {
    const name = input.name.replace(/\.[^.]+$/, "." + part);
    return input.form.querySelector(`[name="${CSS.escape(name)}"]`);
  }

  function identifierCheck(container, input) {
    const note = document.createElement("span");
    note.className = "identifier-check";
    note.setAttribute("aria-live", "polite");
    input.insertAdjacentElement("afterend", note);
    const check = debounce(() => {
      const system = sibling(input, "system");
      const params = new URLSearchParams({ system: system ? system.value : "", value: input.value });
      getJSON(`${container.dataset.checkUrl}?${params}`).then((answer) => {
        if (!answer) return;
        note.textContent = answer.valid ? "" : answer.message;
        note.className = "identifier-check " + (answer.valid ? "valid" : "invalid");
        input.setAttribute("aria-invalid", answer.valid ? "false" : "true");
      });
    });
    input.addEventListener("input", check);
    const system = sibling(input, "system");
    if (system) system.addEventListener("input", check);
  }

  function referenceLookup(input) {
    const endpoints = input.dataset.lookup.split(" ").filter(Boolean).map((pair) => pair.split("="));
    const list = document.createElement("ul");
    list.className = "lookup-results";
    input.insertAdjacentElement("afterend", list);
    const search = debounce(() => {
      const term = input.value.trim();
      list.replaceChildren();
      if (term.length < 2 || /^[A-Za-z]+\/[A-Za-z0-9.-]+$/.test(term)) return;
      endpoints.forEach(([type, url]) => {
        getJSON(`${url}?${new URLSearchParams({ q: term })}`).then((answer) => {
          (answer ? answer.results : []).forEach((found) => {
            const item = document.createElement("li");
            const button = document.createElement("button");
            button.type = "button";
            button.textContent = `${found.display} (${found.reference})`;
            button.addEventListener("click", () => {
              input.value = found.reference;
              const display = sibling(input, "display");
              if (display && !display.value) display.value = found.display;
              list.replaceChildren();
            });
            item.appendChild(button);
            list.appendChild(item);
          });
        });
      });
    });
    input.addEventListener("input", search);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const container = document.getElementById("structured-form");
    if (!container) return;
    container.querySelectorAll("input[data-check-identifier]").forEach((input) => identifierCheck(container, input));
    container.querySelectorAll("input[data-lookup]").forEach(referenceLookup);
  });
})();
