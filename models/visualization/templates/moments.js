document.querySelectorAll('section.video').forEach(function (section) {
  var video = section.querySelector('video');
  var strip = section.querySelector('.strip');
  var head = strip.querySelector('.head');
  var duration = parseFloat(section.dataset.duration);
  var rows = Array.prototype.slice.call(section.querySelectorAll('tr.seg'));
  var stopAt = null;
  if (video) watchErrors(video, section.querySelector('.video-error'));
  function play(row) {
    if (!video) return;
    var start = parseFloat(row.dataset.start);
    stopAt = parseFloat(row.dataset.end);
    video.currentTime = start;
    var started = video.play();
    if (started && started.catch) started.catch(function () {});
  }
  rows.forEach(function (row) {
    row.addEventListener('click', function () { play(row); });
    row.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        play(row);
      }
    });
    if (!(duration > 0)) return;
    var start = parseFloat(row.dataset.start);
    var end = parseFloat(row.dataset.end);
    var mark = document.createElement('span');
    mark.className = 'mark';
    mark.style.left = (100 * start / duration) + '%';
    mark.style.width = Math.max(0.5, 100 * (end - start) / duration) + '%';
    mark.style.top = (4 + 9 * parseInt(row.dataset.lane, 10)) + 'px';
    mark.style.background = row.dataset.colour;
    mark.title = row.dataset.label + ' #' + row.dataset.rank + ': ' +
      clock(start) + '\u2013' + clock(end);
    mark.addEventListener('click', function () { play(row); });
    strip.appendChild(mark);
  });
  if (!video) return;
  video.addEventListener('timeupdate', function () {
    var now = video.currentTime;
    if (stopAt !== null && now >= stopAt) { video.pause(); stopAt = null; }
    if (duration > 0) head.style.left = (100 * now / duration) + '%';
    rows.forEach(function (row) {
      var inside = now >= parseFloat(row.dataset.start) &&
                   now < parseFloat(row.dataset.end);
      row.classList.toggle('playing', inside);
    });
  });
  video.addEventListener('seeking', function () {
    if (stopAt !== null && video.currentTime > stopAt + 0.5) stopAt = null;
  });
});
document.body.dataset.ready = 'yes';
