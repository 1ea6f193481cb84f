using Broker.Configuration;

namespace Broker.Sessions;

/// <summary>
/// A connection's token buckets for frames and bytes, refilled continuously at the configured rates and holding at
/// most one second's worth (the burst). Used by the connection's reader only, so not thread-safe.
/// </summary>
internal sealed class RateLimiter
{
    private readonly TimeProvider _time;
    private readonly double _framesPerSecond;
    private readonly double _bytesPerSecond;
    private double _frames;
    private double _bytes;
    private long _last;

    private RateLimiter(RateLimitOptions options, TimeProvider time)
    {
        _time = time;
        _framesPerSecond = options.FramesPerSecond;
        _bytesPerSecond = options.BytesPerSecond;
        _frames = _framesPerSecond;
        _bytes = _bytesPerSecond;
        _last = time.GetTimestamp();
    }

    /// <summary>A limiter, or null when no rate is set.</summary>
    public static RateLimiter? Create(RateLimitOptions options, TimeProvider time) =>
        options.FramesPerSecond > 0 || options.BytesPerSecond > 0 ? new RateLimiter(options, time) : null;

    /// <summary>Takes one frame of <paramref name="bytes"/>; returns how long to wait before it is within the rate (zero: now).</summary>
    public TimeSpan Take(long bytes)
    {
        var now = _time.GetTimestamp();
        var elapsed = _time.GetElapsedTime(_last, now).TotalSeconds;
        _last = now;
        var wait = 0.0;
        if (_framesPerSecond > 0)
        {
            _frames = Math.Min(_framesPerSecond, _frames + (elapsed * _framesPerSecond)) - 1;
            wait = Math.Max(wait, -_frames / _framesPerSecond);
        }

        if (_bytesPerSecond > 0)
        {
            _bytes = Math.Min(_bytesPerSecond, _bytes + (elapsed * _bytesPerSecond)) - bytes;
            wait = Math.Max(wait, -_bytes / _bytesPerSecond);
        }

        return TimeSpan.FromSeconds(wait);
    }
}
