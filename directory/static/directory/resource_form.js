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

  function enhance(container, root) {
    root.querySelectorAll("input[data-check-identifier]").forEach((input) => identifierCheck(container, input));
    root.querySelectorAll("input[data-lookup]").forEach(referenceLookup);
  }

  // A repeating element gets one blank row from the server; more are copies of the last row
  // with the next index, emptied (the server reads whatever indexes arrive).
  function addAnother(container, element) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "add-another";
    button.textContent = "Add another";
    button.addEventListener("click", () => {
      const rows = element.querySelectorAll(".structured-row");
      const last = rows[rows.length - 1];
      const [name, index] = last.dataset.key.split(".");
      const key = `${name}.${Number(index) + 1}`;
      const row = last.cloneNode(true);
      row.dataset.key = key;
      row.querySelectorAll(".errorlist, .identifier-check, .lookup-results, .remove").forEach((n) => n.remove());
      row.querySelectorAll("[name]").forEach((input) => {
        input.name = input.name.replace(`f.${last.dataset.key}.`, `f.${key}.`).replace(new RegExp(`^f\\.${name}\\.\\d+$`), `f.${key}`);
        input.id = `id_${input.name}`;
        input.value = "";
      });
      row.querySelectorAll("label[for]").forEach((label) => {
        label.htmlFor = label.htmlFor.replace(`f.${last.dataset.key}`, `f.${key}`);
      });
      last.insertAdjacentElement("afterend", row);
      enhance(container, row);
    });
    element.appendChild(button);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const container = document.getElementById("structured-form");
    if (!container) return;
    enhance(container, container);
    container.querySelectorAll("fieldset[data-repeats]").forEach((element) => addAnother(container, element));
  });
})();
