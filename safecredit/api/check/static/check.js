// the only script of the check page: the print button (Ctrl+P does the same)
document.querySelectorAll("[data-print]").forEach((b) => b.addEventListener("click", () => window.print()));
