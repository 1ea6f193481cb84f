using Broker.Hosting;
using Broker.Security;

// `hash-password`: reads a password from standard input and prints the PBKDF2 hash for Broker:Security:Users.
if (args is ["hash-password", ..])
{
    var password = Console.IsInputRedirected ? Console.In.ReadLine() : ReadHidden();
    if (string.IsNullOrEmpty(password))
    {
        await Console.Error.WriteLineAsync("usage: echo -n 'PASSWORD' | dotnet run --project src/Broker -- hash-password");
        return 2;
    }

    Console.WriteLine(PasswordHasher.Hash(password));
    return 0;
}

// `health-check URL`: exit 0 when the URL answers 2xx (for container health checks, where no curl is installed).
if (args is ["health-check", var url])
{
    using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
    try
    {
        using var response = await http.GetAsync(new Uri(url));
        return response.IsSuccessStatusCode ? 0 : 1;
    }
    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
    {
        await Console.Error.WriteLineAsync($"health check failed: {ex.Message}");
        return 1;
    }
}

var builder = WebApplication.CreateSlimBuilder(args);
builder.AddStompBroker();

var app = builder.Build();
app.MapStompBroker();
await app.RunAsync();
return 0;

static string ReadHidden()
{
    Console.Error.Write("Password: ");
    var password = new System.Text.StringBuilder();
    for (var key = Console.ReadKey(intercept: true); key.Key != ConsoleKey.Enter; key = Console.ReadKey(intercept: true))
    {
        if (key.Key == ConsoleKey.Backspace && password.Length > 0)
        {
            password.Length--;
        }
        else if (!char.IsControl(key.KeyChar))
        {
            password.Append(key.KeyChar);
        }
    }

    Console.Error.WriteLine();
    return password.ToString();
}

/// <summary>The entry point, public so tests can start the broker in-process.</summary>
public partial class Program;
