// The loading view's part in trunk's loader: how much of the app has arrived, and a sentence
// when it could not start. index.html holds the view; the app removes it as it mounts.
export default function () {
  const view = () => document.getElementById("boot");
  return {
    onProgress({ current, total }) {
      const bar = document.getElementById("boot-progress");
      if (!bar || !total) return;
      bar.hidden = false;
      bar.value = Math.min(100, Math.round((current / total) * 100));
    },
    onFailure(reason) {
      const boot = view();
      // A browser already told what it lacks keeps that sentence, which says more.
      if (!boot || boot.hasAttribute("data-failed")) return;
      boot.setAttribute("data-failed", "");
      document.getElementById("boot-progress").hidden = true;
      document.getElementById("boot-status").textContent =
        "Ferry could not start (" + reason + "). Reload the page to try again.";
    },
  };
}
