function clock(s) {
  var t = Math.round(Math.max(0, s) * 10), f = t % 10;
  t = (t - f) / 10;
  var h = Math.floor(t / 3600), m = Math.floor(t / 60) % 60, x = t % 60;
  var ss = (x < 10 ? '0' : '') + x + '.' + f;
  return h ? h + ':' + (m < 10 ? '0' : '') + m + ':' + ss : m + ':' + ss;
}
var MEDIA_ERRORS = {1: 'loading was aborted', 2: 'a network error',
  3: 'the file could not be decoded',
  4: 'the file is missing there, or its codec is not one browsers play ' +
     '(MPEG-4 Part 2 "mp4v" is not; H.264 and WebM are)'};
function watchErrors(video, box) {
  video.addEventListener('error', function () {
    var code = video.error ? video.error.code : 0;
    box.textContent = 'This browser cannot play ' +
      (video.dataset.name || 'the video') + ' from ' +
      decodeURIComponent(video.getAttribute('src')) + ': ' +
      (MEDIA_ERRORS[code] || 'unknown error') +
      '. The times on this page still hold: open the file in a player.';
    box.hidden = false;
  });
}
