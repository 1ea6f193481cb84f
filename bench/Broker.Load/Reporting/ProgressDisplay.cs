using System.Diagnostics;
using System.Globalization;

namespace Broker.Load.Reporting;

/// <summary>
/// A line a second on stderr while a run goes: phase, counts and rates since the last line. On a terminal the line is
/// redrawn in place; in a log each second is its own line.
/// </summary>
internal sealed class ProgressDisplay : IAsyncDisposable
{
    private readonly Func<(long Sent, long Received)> _counts;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly bool _inPlace = !Console.IsErrorRedirected;
    private readonly long _start = Stopwatch.GetTimestamp();

    public ProgressDisplay(Func<(long Sent, long Received)> counts, bool quiet)
    {
        _counts = counts;
        _loop = quiet ? Task.CompletedTask : RunAsync(_stop.Token);
    }

    public string Phase { get; set; } = "starting";

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        var (lastSent, lastReceived) = _counts();
        var lastAt = Stopwatch.GetTimestamp();
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var (sent, received) = _counts();
                var now = Stopwatch.GetTimestamp();
                var seconds = Stopwatch.GetElapsedTime(lastAt, now).TotalSeconds;
                var line = string.Create(CultureInfo.InvariantCulture,
                    $"{Stopwatch.GetElapsedTime(_start, now).TotalSeconds,6:F1} s  {Phase,-9}  sent {sent,12:N0} ({(sent - lastSent) / seconds,10:N0}/s)  received {received,12:N0} ({(received - lastReceived) / seconds,10:N0}/s)");
                Console.Error.Write(_inPlace ? "\r" + line : line + Environment.NewLine);
                (lastSent, lastReceived, lastAt) = (sent, received, now);
            }
        }
        catch (OperationCanceledException)
        {
        }

        if (_inPlace)
        {
            Console.Error.WriteLine();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
