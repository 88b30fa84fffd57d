// The seed's ItemsFunction, as written for AWS Lambda's Node.js runtime.
const items = [
  { ID: 1, name: 'Pen', price: 2.5 },
  { ID: 2, name: 'Pencil', price: 1.5 },
  { ID: 3, name: 'Highlighter', price: 3.0 },
  { ID: 4, name: 'Ruler', price: 5.0 },
];

export const handler = async (event, context) => {
  console.log(`Event: ${JSON.stringify(event)}`);
  if ('ID' in event) {
    const item = items.find((item) => item.ID === Number(event.ID));
    if (item) return item;
    throw new Error('NotFoundError');
  }
  return items;
};
