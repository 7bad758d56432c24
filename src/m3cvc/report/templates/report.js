/* m3cvc report: synchronised playback of the original, decoded and difference videos, frame
   stepping, the wipe view, and the keyframe strip. No libraries, no network. */
(function () {
  "use strict";
  var node = document.getElementById("m3cvc-page");
  if (!node) { return; }
  var page = JSON.parse(node.textContent);
  var videos = Array.prototype.slice.call(document.querySelectorAll("video[data-sync]"));
  if (!videos.length) { return; }
  var fps = page.fps, frames = page.frames, keyframes = page.keyframes;
  var master = videos[0];
  var slider = document.getElementById("frame");
  var label = document.getElementById("frame-label");
  var now = document.getElementById("now");
  var playButton = document.getElementById("play");
  var viewer = document.getElementById("viewer");
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card[data-frame]"));

  function frameAt(t) { return Math.max(0, Math.min(frames - 1, Math.floor(t * fps + 1e-3))); }
  function clipOf(i) {
    var k = 0;
    for (var j = 0; j < keyframes.length; j++) { if (keyframes[j].index <= i) { k = j; } }
    return k;
  }
  function el(tag, text) { var e = document.createElement(tag); if (text !== undefined) { e.textContent = text; } return e; }
  function described(sup, t) {
    /* "D^F: text" with the same notation as the cards; the text isolated (bdi) and never parsed as HTML */
    var span = el("span"), d = el("b", "D");
    d.appendChild(el("sup", sup));
    span.appendChild(d);
    span.appendChild(document.createTextNode(" "));
    var body = el("bdi", t ? t : "(none)");
    if (!t) { body.className = "empty"; }
    span.appendChild(body);
    return span;
  }
  function show(i) {
    slider.value = i;
    label.textContent = "frame " + i + " / " + (frames - 1);
    var k = clipOf(i), kf = keyframes[k];
    var isKey = kf && kf.index === i;
    var parts = [];
    if (kf) {
      parts.push(el("span", (isKey ? "Keyframe #" : "Clip of keyframe #") + k + " (frame " + kf.index + ", " +
                            kf.trigger + ", " + kf.bytes + " bytes)"));
      parts.push(described("F", kf.keyframe_text));
      parts.push(described("C", kf.clip_text));
    }
    var metrics = page.per_frame || {};
    var values = [];
    Object.keys(metrics).forEach(function (m) {
      var v = metrics[m][i];
      if (v !== null && v !== undefined) { values.push(m + " " + Number(v).toFixed(m === "lpips" ? 4 : 2)); }
    });
    if (values.length) { parts.push(el("span", "this frame: " + values.join(", "))); }
    now.textContent = "";
    parts.forEach(function (part, j) {
      if (j) { now.appendChild(document.createTextNode(" \u2014 ")); }
      now.appendChild(part);
    });
    cards.forEach(function (c, j) { c.classList.toggle("active", j === k); });
  }
  function seek(i) {
    i = Math.max(0, Math.min(frames - 1, i));
    var t = (i + 0.5) / fps;
    videos.forEach(function (v) { v.pause(); v.currentTime = t; });
    playButton.textContent = "Play";
    show(i);
  }
  function play() {
    if (master.ended || frameAt(master.currentTime) >= frames - 1) { seek(0); }
    var t = master.currentTime;
    videos.forEach(function (v) { v.currentTime = t; var p = v.play(); if (p && p.catch) { p.catch(function () {}); } });
    playButton.textContent = "Pause";
  }
  function pause() {
    /* stop every video, then put them all on the frame the first one shows (they drift apart while playing) */
    videos.forEach(function (v) { v.pause(); });
    seek(frameAt(master.currentTime));
  }

  playButton.addEventListener("click", function () { if (master.paused) { play(); } else { pause(); } });
  document.getElementById("prev").addEventListener("click", function () { seek(frameAt(master.currentTime) - 1); });
  document.getElementById("next").addEventListener("click", function () { seek(frameAt(master.currentTime) + 1); });
  slider.addEventListener("input", function () { seek(parseInt(slider.value, 10)); });
  master.addEventListener("timeupdate", function () {
    videos.forEach(function (v) {
      if (v !== master && !master.paused && Math.abs(v.currentTime - master.currentTime) > 0.5 / fps) { v.currentTime = master.currentTime; }
    });
    show(frameAt(master.currentTime));
  });
  master.addEventListener("ended", pause);
  cards.forEach(function (c) { c.addEventListener("click", function () { seek(parseInt(c.getAttribute("data-frame"), 10)); }); });
  document.addEventListener("keydown", function (e) {
    if (e.target && e.target.tagName === "INPUT") { return; }
    if (e.key === "ArrowLeft") { seek(frameAt(master.currentTime) - 1); e.preventDefault(); }
    else if (e.key === "ArrowRight") { seek(frameAt(master.currentTime) + 1); e.preventDefault(); }
    else if (e.key === " ") { if (master.paused) { play(); } else { pause(); } e.preventDefault(); }
  });
  Array.prototype.slice.call(document.querySelectorAll("button.view")).forEach(function (b) {
    b.addEventListener("click", function () {
      viewer.className = "viewer view-" + b.getAttribute("data-view");
      document.querySelectorAll("button.view").forEach(function (o) { o.classList.toggle("active", o === b); });
      if (wipe) { wipe.hidden = b.getAttribute("data-view") !== "wipe"; }
    });
  });
  var wipe = document.getElementById("wipe");
  if (wipe) {
    wipe.addEventListener("input", function () { viewer.style.setProperty("--wipe", wipe.value + "%"); });
  }
  /* A web server without HTTP range requests (python -m http.server) gives videos that cannot seek:
     load such a video whole (they are small) and play it from memory. From disk, seeking just works. */
  if (/^https?:$/.test(location.protocol) && window.fetch) {
    videos.forEach(function (v) {
      v.addEventListener("loadedmetadata", function () {
        var seekable = v.seekable.length && v.seekable.end(v.seekable.length - 1) >= v.duration - 0.5 / fps;
        if (seekable || v.dataset.whole) { return; }
        v.dataset.whole = "1";
        fetch(v.currentSrc).then(function (r) { return r.blob(); }).then(function (blob) {
          var t = master.currentTime;
          v.src = URL.createObjectURL(blob);
          v.addEventListener("loadeddata", function () { v.currentTime = t; }, { once: true });
        });
      });
    });
  }
  show(0);
  master.addEventListener("loadeddata", function () { seek(0); }, { once: true });
})();
