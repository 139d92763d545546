// The demo shop's own script (the edge's check is /_botscore/check.js).
document.documentElement.dataset.ready = "1";
