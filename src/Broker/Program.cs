using Broker.Hosting;

var builder = WebApplication.CreateSlimBuilder(args);
builder.AddStompBroker();

var app = builder.Build();
app.MapStompBroker();
await app.RunAsync();

/// <summary>The entry point, public so tests can start the broker in-process.</summary>
public partial class Program;
